"""Self-registration: exactly one organization (G4) however often and wherever it is sent."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from accord.bootstrap import Accord
from accord.config import PasswordSettings
from accord.domain import errors
from accord.domain.model import RegistrationSource
from accord.services.registration import Registration, register
from tests.engine.conftest import scalar
from tests.guarantees import assert_guarantees


def bob(**changes) -> Registration:
    values = {"email": "bob@example.com", "password": "correct horse battery", "full_name": "Bob"}
    return Registration(**{**values, **changes})


async def test_registration_creates_user_identity_and_one_owned_organization(app: Accord) -> None:
    result = await register(app, bob(organization_name="Bob's Bakery"))
    assert result["user"]["status"] == "active"
    org = result["organization"]
    assert (org["slug"], org["display_name"], org["kind"]) == (
        "bob-s-bakery",
        "Bob's Bakery",
        "personal",
    )
    assert org["owner_user_id"] == result["user"]["id"]
    assert result["user"]["organizations"] == [
        {"organization_id": org["id"], "role": "org_admin", "permissions": []}
    ]
    assert await app.idp.find_by_email("bob@example.com") is not None
    await assert_guarantees(app)


async def test_without_an_organization_name_the_local_part_names_it(app: Accord) -> None:
    result = await register(app, bob(email="Bob.Smith@Example.com"))
    assert result["organization"]["slug"] == "bob-smith"


async def test_a_slug_collision_gets_a_suffix(app: Accord) -> None:
    first = await register(app, bob(email="bob@one.example"))
    second = await register(app, bob(email="bob@two.example"))
    third = await register(app, bob(email="bob@three.example", organization_name="Bob"))
    slugs = [r["organization"]["slug"] for r in (first, second, third)]
    assert slugs == ["bob", "bob-2", "bob-3"]


async def test_retried_five_times_with_one_key_yields_one_organization(app: Accord) -> None:
    results = [await register(app, bob(), idempotency_key="signup-1") for _ in range(5)]
    assert all(r == results[0] for r in results)
    assert await scalar(app, "SELECT count(*) FROM organizations") == 1


async def test_retried_five_times_without_a_key_yields_one_organization(app: Accord) -> None:
    await register(app, bob())
    for _ in range(4):
        with pytest.raises(errors.EmailAlreadyExists) as caught:
            await register(app, bob(email=" BOB@example.com"))
        assert "sign in, or reset your password" in caught.value.message
    assert await scalar(app, "SELECT count(*) FROM organizations") == 1
    await assert_guarantees(app)


async def test_sent_concurrently_from_web_and_ide_yields_one_organization(app: Accord) -> None:
    sources = [RegistrationSource.WEB, RegistrationSource.IDE, RegistrationSource.API] * 4
    outcomes = await asyncio.gather(
        *(register(app, bob(source=s)) for s in sources), return_exceptions=True
    )
    assert sum(isinstance(o, dict) for o in outcomes) == 1
    assert all(isinstance(o, dict | errors.EmailAlreadyExists) for o in outcomes)
    assert await scalar(app, "SELECT count(*) FROM organizations") == 1
    assert await scalar(app, "SELECT count(*) FROM users") == 1
    await assert_guarantees(app)


async def test_a_password_the_idp_refuses_leaves_no_trace(app: Accord) -> None:
    # accord's own strength rule off, so that the IdP's policy is what refuses "abc".
    lenient = replace(
        app, settings=app.settings.model_copy(update={"password": PasswordSettings(min_score=0)})
    )
    with pytest.raises(errors.RemoteRejected):
        await register(lenient, bob(password="abc"))
    for table in ("users", "organizations", "memberships", "idp_links"):
        assert await scalar(app, f"SELECT count(*) FROM {table}") == 0, table
    assert [u async for u in app.idp.iter_users()] == []
    assert await scalar(app, "SELECT state FROM operations") == "failed"
    # The person fixes the password and succeeds with the same e-mail.
    assert (await register(app, bob()))["user"]["email"] == "bob@example.com"


async def test_an_identity_registered_elsewhere_is_not_taken_over(app: Accord) -> None:
    from uuid import uuid4

    from accord.domain.ports import NewRemoteUser

    await app.idp.create(NewRemoteUser(uuid4(), "bob@example.com", "Bob", "their password!"))
    with pytest.raises(errors.EmailAlreadyExists):
        await register(app, bob())
    assert len([u async for u in app.idp.iter_users()]) == 1  # left alone
    assert await scalar(app, "SELECT count(*) FROM users") == 0


async def test_the_password_is_not_stored_in_plaintext(app: Accord) -> None:
    await register(app, bob(password="a very particular passphrase"))
    dump = await scalar(
        app,
        "SELECT string_agg(t::text, ' ') FROM (SELECT row_to_json(o) t FROM operations o "
        "UNION ALL SELECT row_to_json(a) FROM audit_events a "
        "UNION ALL SELECT row_to_json(c) FROM local_credentials c) s",
    )
    assert "a very particular passphrase" not in dump
    # Held sealed only until the IdP had it (G9).
    assert await scalar(app, "SELECT sealed_secrets FROM operations") is None
