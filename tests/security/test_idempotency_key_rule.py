"""Idempotency-Key: 1 to 255 visible ASCII characters, over HTTP (issue 11, LOW). The IETF draft
sets no minimum: a one-character key replays; 256 characters or a space answer 422."""

from __future__ import annotations

from uuid import uuid4

import httpx
import pytest

from accord.bootstrap import Accord
from accord.services import tokens
from tests.api.conftest import bearer, new_org, problem
from tests.security import verifying_server

settings, http = verifying_server.settings, verifying_server.http


async def post(http: httpx.AsyncClient, accord: Accord, key: str) -> tuple[str, httpx.Response]:
    org = await new_org(accord, f"Keys {uuid4().hex[:8]}")
    token, _ = await tokens.create_token(accord, name="keys", organization_id=org)
    body = {"email": f"k-{uuid4().hex[:8]}@example.com", "full_name": "K"}
    url = f"/api/admin/organizations/{org}/users"
    first = await http.post(url, json=body, headers=bearer(token, **{"Idempotency-Key": key}))
    again = await http.post(url, json=body, headers=bearer(token, **{"Idempotency-Key": key}))
    assert first.status_code == again.status_code and first.json() == again.json()
    return token, first


@pytest.mark.parametrize("key", ["k", "x" * 255, "order-42", "!#$%&'()*+,-./~"])
async def test_a_key_of_1_to_255_visible_characters_replays(
    http: httpx.AsyncClient, accord: Accord, key: str
) -> None:
    _, first = await post(http, accord, key)
    assert first.status_code == 201, first.text


@pytest.mark.parametrize("key", ["x" * 256, "with space", 'quo"te'])
async def test_any_other_key_is_refused(http: httpx.AsyncClient, accord: Accord, key: str) -> None:
    org = await new_org(accord, f"Bad keys {uuid4().hex[:8]}")
    token, _ = await tokens.create_token(accord, name="keys", organization_id=org)
    response = await http.post(
        f"/api/admin/organizations/{org}/users",
        json={"email": f"b-{uuid4().hex[:8]}@example.com", "full_name": "B"},
        headers=bearer(token, **{"Idempotency-Key": key}),
    )
    problem(response, 422, "invalid_input")
