"""Finding "refused public requests cost rows" (issue 11, abuse is free): on 2a4d142, 1,000
unauthenticated registrations for a taken e-mail added 1,000 operations and 1,000 audit events,
and 300 DELETEs of random ids with an organization token 300 and 300. Now a request refused at
its claim stores nothing unless it carried an Idempotency-Key, which must replay the same
answer (G6), so only a keyed refusal is kept."""

from __future__ import annotations

from uuid import uuid4

import httpx
import pytest

from accord.bootstrap import Accord
from accord.domain import errors
from accord.services import tokens
from accord.services.registration import Registration, register
from tests.engine.conftest import new_org, scalar
from tests.security import verifying_server
from tests.security.verifying_server import PASSWORD

settings, http = verifying_server.settings, verifying_server.http

ATTEMPTS = 50


async def rows(accord: Accord) -> tuple[int, int]:
    """How many operations and audit events are stored."""
    ops = await scalar(accord, "SELECT count(*) FROM operations")
    events = await scalar(accord, "SELECT count(*) FROM audit_events")
    return ops, events


async def test_refused_registrations_without_a_key_store_nothing(accord: Accord) -> None:
    email = f"taken-{uuid4().hex[:10]}@example.com"
    await register(accord, Registration(email, PASSWORD, "Owner"))
    before = await rows(accord)
    for _ in range(ATTEMPTS):
        with pytest.raises(errors.EmailAlreadyExists):
            await register(accord, Registration(email, "someone else's pass", "Mallory"))
    assert await rows(accord) == before


async def test_a_refusal_with_a_key_is_kept_and_replays(accord: Accord) -> None:
    email = f"taken-{uuid4().hex[:10]}@example.com"
    await register(accord, Registration(email, PASSWORD, "Owner"))
    ops, events = await rows(accord)
    attempt = Registration(email, "someone else's pass", "Mallory")
    for _ in range(3):
        with pytest.raises(errors.EmailAlreadyExists):
            await register(accord, attempt, idempotency_key="retry-me")
    assert await rows(accord) == (ops + 1, events + 1)  # one refused operation, one event
    stored = await scalar(accord, "SELECT error->>'code' FROM operations ORDER BY created_at DESC")
    assert stored == "email_exists"


async def test_deletes_of_unknown_ids_store_nothing(
    http: httpx.AsyncClient, accord: Accord
) -> None:
    org = await new_org(accord, f"Org {uuid4().hex[:8]}")
    token, _ = await tokens.create_token(accord, name="org", organization_id=org)
    auth = {"Authorization": f"Bearer {token}"}
    before = await rows(accord)
    for _ in range(ATTEMPTS):
        gone = await http.delete(f"/api/admin/users/{uuid4()}", headers=auth)
        assert gone.status_code == 404, gone.text
    assert await rows(accord) == before

    keyed = {**auth, "Idempotency-Key": f"delete-{uuid4()}"}
    target = f"/api/admin/users/{uuid4()}"
    first, again = [await http.delete(target, headers=keyed) for _ in range(2)]
    assert (first.status_code, again.status_code) == (404, 404)
    assert first.json()["code"] == again.json()["code"] == "user_not_found"
    assert (await rows(accord))[0] == before[0] + 1
