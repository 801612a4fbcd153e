"""A SCIM create while the identity provider fails: the IdP (Okta, Entra) is told to retry
(503 with Retry-After: SCIM has no 202), and its retry of the same request finishes the same
operation: one accord user, one identity, whatever the fault."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from accord.bootstrap import Accord
from accord.services import directory
from accord.testing import FakeIdentityProvider
from tests.api.conftest import Tokens
from tests.api.scim_helpers import Scim, entra_user, scim_clients, scim_error


@pytest.fixture
async def scim(accord: Accord, client: Any, creds: Tokens) -> Scim:
    return await scim_clients(accord, client, creds)


@pytest.mark.parametrize("fault", ["unavailable", "timeout", "ghost"])
async def test_a_create_that_meets_a_fault_is_finished_by_the_retry(
    scim: Scim, accord: Accord, fake: FakeIdentityProvider, fault: str
) -> None:
    email = scim.creds.email(f"fault-{fault}")
    body = entra_user(email, external_id=str(uuid4()))
    fake.script("create", fault)
    first = await scim.post("/Users", body, scim.token_b)
    if first.status_code != 201:  # the fault surfaced: the IdP is asked to come back
        scim_error(first, 503)
        assert int(first.headers["Retry-After"]) >= 1
        assert (await scim.get("/Users", scim.token_b, filter=f'userName eq "{email}"')).json()[
            "totalResults"
        ] == 0  # nobody half-made is listed meanwhile
    retried = await scim.post("/Users", body, scim.token_b)
    assert retried.status_code == 201, retried.text
    if first.status_code == 201:
        assert first.json()["id"] == retried.json()["id"]
    user = await directory.get_user(accord, retried.json()["id"])
    assert user["email"] == email and user["status"] in ("pending", "active")
    assert [r.email for r in fake.users.values()].count(email) == 1  # one identity
