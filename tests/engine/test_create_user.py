"""Admin user creation: G1, G2, G5, G6, G7, G9, G10 under retries, races and failures."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import CredentialMode, Role
from accord.services.provisioning import NewUser, create_user
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees


def ada(org_id: UUID, **changes) -> NewUser:
    values = {"email": "ada@example.com", "full_name": "Ada Lovelace", "organization_id": org_id}
    return NewUser(**{**values, **changes})


async def test_creates_a_pending_user_with_membership_link_audit_and_invitation(
    app: Accord,
) -> None:
    org = await new_org(app)
    result = await create_user(
        app, ada(org, role=Role.ORG_ADMIN, permissions=("reports", "billing")), caller=PLATFORM
    )
    user = result["user"]
    assert user["email"] == "ada@example.com"
    assert user["status"] == "pending"
    assert result["reused_identity"] is False
    assert result["temporary_password"] is None
    assert user["organizations"] == [
        {"organization_id": str(org), "role": "org_admin", "permissions": ["billing", "reports"]}
    ]
    remote = await app.idp.find_by_email("ada@example.com")
    assert remote is not None
    assert await scalar(app, "SELECT remote_id FROM idp_links") == remote.remote_id
    assert await scalar(app, "SELECT count(*) FROM outbox WHERE kind = 'invitation'") == 1
    actions = await scalar(app, "SELECT array_agg(action ORDER BY id) FROM audit_events")
    assert actions == ["organization.created", "create_user.started", "user.created"]
    await assert_guarantees(app)


async def test_same_email_again_fails_with_email_exists_and_changes_nothing(app: Accord) -> None:
    org = await new_org(app)
    await create_user(app, ada(org), caller=PLATFORM)
    before = (
        await scalar(app, "SELECT count(*) FROM users"),
        await scalar(app, "SELECT count(*) FROM memberships"),
    )
    with pytest.raises(errors.EmailAlreadyExists) as caught:
        await create_user(app, ada(org, email="  ADA@example.com "), caller=PLATFORM)
    assert "ada@example.com already exists" in caught.value.message
    after = (
        await scalar(app, "SELECT count(*) FROM users"),
        await scalar(app, "SELECT count(*) FROM memberships"),
    )
    assert before == after == (1, 1)
    assert await scalar(app, "SELECT count(*) FROM outbox") == 1
    await assert_guarantees(app)


async def test_row_deleted_but_idp_user_left_is_adopted_with_a_new_credential(app: Accord) -> None:
    org = await new_org(app)
    first = await create_user(
        app, ada(org, credential=CredentialMode.TEMP_PASSWORD), caller=PLATFORM
    )
    old_password = first["temporary_password"]
    remote_before = await app.idp.find_by_email("ada@example.com")
    await scalar(app, "DELETE FROM users WHERE email = 'ada@example.com' RETURNING 1")

    second = await create_user(
        app,
        ada(org, full_name="Ada King", credential=CredentialMode.TEMP_PASSWORD),
        caller=PLATFORM,
    )
    assert second["reused_identity"] is True
    assert second["temporary_password"] not in (None, old_password)
    remote_after = await app.idp.get(remote_before.remote_id)
    assert remote_after.full_name == "Ada King"  # metadata updated
    # The identity carries the id an earlier operation of accord claimed for this address: it
    # is accord's own (adopted automatically), and the link says accord made it.
    assert await scalar(app, "SELECT created_by_accord FROM idp_links") is True
    adopted = await scalar(
        app, "SELECT count(*) FROM audit_events WHERE action = 'user.identity_adopted'"
    )
    assert adopted == 1
    if app.idp.name == "local":  # the old credential no longer opens the account
        assert await app.idp.verify_password("ada@example.com", old_password) is None
        assert await app.idp.verify_password("ada@example.com", second["temporary_password"])
    await assert_guarantees(app)


async def test_temporary_password_is_returned_once_and_never_stored_in_plaintext(
    app: Accord,
) -> None:
    org = await new_org(app)
    result = await create_user(
        app,
        ada(org, credential=CredentialMode.TEMP_PASSWORD),
        caller=PLATFORM,
        idempotency_key="k-temp",
    )
    password = result["temporary_password"]
    assert len(password) == 16
    assert result["user"]["require_password_change"] is True
    # The same key replays the same answer...
    again = await create_user(
        app,
        ada(org, credential=CredentialMode.TEMP_PASSWORD),
        caller=PLATFORM,
        idempotency_key="k-temp",
    )
    assert again == result
    # ...but no table holds the password in plaintext.
    dump = await scalar(
        app,
        "SELECT string_agg(t::text, ' ') FROM (SELECT row_to_json(o) t FROM operations o "
        "UNION ALL SELECT row_to_json(c) FROM local_credentials c "
        "UNION ALL SELECT row_to_json(a) FROM audit_events a "
        "UNION ALL SELECT row_to_json(x) FROM outbox x) s",
    )
    assert password not in dump


async def test_org_admin_may_only_create_in_their_own_organization(app: Accord) -> None:
    mine, theirs = await new_org(app, "Mine"), await new_org(app, "Theirs")
    org_admin = Caller.organization("token:mine", mine, actor="boss@mine.test")
    created = await create_user(app, ada(mine), caller=org_admin)
    assert created["user"]["organizations"][0]["organization_id"] == str(mine)
    with pytest.raises(errors.Forbidden):
        await create_user(app, ada(theirs, email="eve@example.com"), caller=org_admin)
    assert await scalar(app, "SELECT count(*) FROM users") == 1


async def test_unknown_organization(app: Accord) -> None:
    from uuid import uuid4

    with pytest.raises(errors.OrganizationNotFound):
        await create_user(app, ada(uuid4()), caller=PLATFORM)
    assert await scalar(app, "SELECT count(*) FROM users") == 0


@pytest.mark.parametrize(
    ("email", "code"),
    [
        ("not-an-email", "email_invalid"),
        ("", "email_invalid"),
        ("a@b.c" + "c" * 300, "email_invalid"),
    ],
)
async def test_invalid_input_is_refused_before_anything_happens(
    app: Accord, email: str, code: str
) -> None:
    org = await new_org(app)
    with pytest.raises(errors.AccordError) as caught:
        await create_user(app, ada(org, email=email), caller=PLATFORM)
    assert caught.value.code == code
    assert await scalar(app, "SELECT count(*) FROM operations") == 0


async def test_same_key_with_a_different_request_is_refused(app: Accord) -> None:
    org = await new_org(app)
    await create_user(app, ada(org), caller=PLATFORM, idempotency_key="k1")
    with pytest.raises(errors.IdempotencyKeyReused):
        await create_user(
            app, ada(org, full_name="Someone Else"), caller=PLATFORM, idempotency_key="k1"
        )
    # Keys are scoped per caller: another caller's k1 is a different key.
    other = Caller.platform("token:other")
    with pytest.raises(errors.EmailAlreadyExists):
        await create_user(app, ada(org), caller=other, idempotency_key="k1")


async def test_a_refusal_is_replayed_for_the_same_key(app: Accord) -> None:
    org = await new_org(app, max_users=1)
    await create_user(app, ada(org, email="first@example.com"), caller=PLATFORM)
    for _ in range(2):
        with pytest.raises(errors.OrganizationFull):
            await create_user(app, ada(org), caller=PLATFORM, idempotency_key="k-full")
    # Even after room is made, the key keeps its answer (its effects happen at most once).
    await scalar(app, "UPDATE organizations SET max_users = 5 RETURNING 1")
    with pytest.raises(errors.OrganizationFull):
        await create_user(app, ada(org), caller=PLATFORM, idempotency_key="k-full")


async def test_a_create_names_its_user_from_the_insert_on_and_a_refused_one_names_none(
    app: Accord,
) -> None:
    org = await new_org(app)
    made = await create_user(app, ada(org), caller=PLATFORM, idempotency_key="k-made")
    with pytest.raises(errors.EmailAlreadyExists):
        await create_user(app, ada(org), caller=PLATFORM, idempotency_key="k-taken")
    made_op = await scalar(
        app, "SELECT user_id::text FROM operations WHERE idempotency_key = 'k-made'"
    )
    assert made_op == made["user"]["id"]
    # The refused claim's chosen id was never a user: its kept operation must not name it.
    assert await scalar(
        app,
        "SELECT user_id IS NULL AND organization_id IS NULL FROM operations "
        "WHERE idempotency_key = 'k-taken' AND state = 'failed'",
    )
    await assert_guarantees(app)


async def test_fifty_concurrent_requests_for_one_email_make_one_user(app: Accord) -> None:
    org = await new_org(app, max_users=100)
    spellings = ["ada@example.com", "ADA@example.com", " Ada@Example.com ", "ada@EXAMPLE.COM\t"]
    requests = [ada(org, email=spellings[i % len(spellings)]) for i in range(50)]
    outcomes = await asyncio.gather(
        *(
            create_user(app, r, caller=PLATFORM, idempotency_key=f"k{i}")
            for i, r in enumerate(requests)
        ),
        return_exceptions=True,
    )
    created = [o for o in outcomes if isinstance(o, dict)]
    refused = [o for o in outcomes if isinstance(o, errors.EmailAlreadyExists)]
    assert len(created) == 1 and len(refused) == 49, [type(o) for o in outcomes]
    assert await scalar(app, "SELECT count(*) FROM users") == 1
    assert len([u async for u in app.idp.iter_users()]) == 1
    await assert_guarantees(app)


async def test_fifty_concurrent_requests_with_one_key_get_one_answer(app: Accord) -> None:
    org = await new_org(app)
    outcomes = await asyncio.gather(
        *(create_user(app, ada(org), caller=PLATFORM, idempotency_key="same") for _ in range(50)),
        return_exceptions=True,
    )
    # Each answer is the operation's result, or (G6) 409 while the first is still running: a
    # retry waits SAME_KEY_WAIT_SECONDS for it, and a loaded machine may need longer.
    answers = [o for o in outcomes if isinstance(o, dict)]
    busy = [o for o in outcomes if isinstance(o, errors.OperationInProgress)]
    assert answers and len(answers) + len(busy) == 50, {type(o).__name__ for o in outcomes}
    assert all(o == answers[0] for o in answers)
    retried = await create_user(app, ada(org), caller=PLATFORM, idempotency_key="same")
    assert retried == answers[0]
    assert await scalar(app, "SELECT count(*) FROM operations") == 1
    assert await scalar(app, "SELECT count(*) FROM users") == 1


async def test_hundred_concurrent_creations_respect_max_users(app: Accord) -> None:
    org = await new_org(app, max_users=10)
    outcomes = await asyncio.gather(
        *(
            create_user(app, ada(org, email=f"u{i}@example.com"), caller=PLATFORM)
            for i in range(100)
        ),
        return_exceptions=True,
    )
    created = [o for o in outcomes if isinstance(o, dict)]
    full = [o for o in outcomes if isinstance(o, errors.OrganizationFull)]
    assert (len(created), len(full)) == (10, 90), {type(o).__name__ for o in outcomes}
    assert await scalar(app, "SELECT count(*) FROM memberships") == 10
    assert await scalar(app, "SELECT count(*) FROM users") == 10
    await assert_guarantees(app)
