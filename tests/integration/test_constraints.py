"""Each invariant that PostgreSQL holds rejects what it must, and is reported as a domain error."""

import asyncio
import uuid

import pytest
from sqlalchemy import insert

from accord.adapters.db.database import Database
from accord.adapters.db.errors import ConstraintViolated, constraint_name
from accord.adapters.db.tables import api_tokens, idp_links, memberships, organizations, users
from accord.bootstrap import Accord
from accord.domain import errors
from tests.engine.conftest import scalar
from tests.engine.test_lock_order import WAITING_ON_LOCKS, until
from tests.patience import PATIENCE


def user(email: str, **extra) -> dict:
    return {"id": uuid.uuid4(), "email": email, "full_name": "Test", "status": "active", **extra}


def org(slug: str, **extra) -> dict:
    return {"id": uuid.uuid4(), "slug": slug, "display_name": slug, "kind": "team", **extra}


async def insert_rows(db: Database, table, *rows: dict) -> None:
    async with db.transaction() as conn:
        for row in rows:
            await conn.execute(insert(table).values(**row))


async def test_one_user_per_normalized_email(accord: Accord) -> None:
    await insert_rows(accord.db, users, user("alice@example.com"))
    with pytest.raises(errors.EmailAlreadyExists):
        await insert_rows(accord.db, users, user("alice@example.com"))


@pytest.mark.parametrize(
    "spelling", ["Alice@example.com", " alice@example.com", "ALICE@EXAMPLE.COM "]
)
async def test_unnormalized_email_is_refused(accord: Accord, spelling: str) -> None:
    # Two spellings of one address can never both be stored: only the normalized one can be.
    with pytest.raises(errors.EmailInvalid):
        await insert_rows(accord.db, users, user(spelling))


async def test_one_personal_organization_per_owner(accord: Accord) -> None:
    owner = user("bob@example.com")
    await insert_rows(accord.db, users, owner)
    await insert_rows(
        accord.db, organizations, org("bob", kind="personal", owner_user_id=owner["id"])
    )
    with pytest.raises(ConstraintViolated) as caught:
        await insert_rows(
            accord.db, organizations, org("bob-org", kind="personal", owner_user_id=owner["id"])
        )
    assert caught.value.constraint == "uq_organizations_personal_owner"
    # A team organization owned by the same person is fine.
    await insert_rows(accord.db, organizations, org("bob-team", owner_user_id=owner["id"]))


async def test_unique_slug(accord: Accord) -> None:
    await insert_rows(accord.db, organizations, org("acme"))
    with pytest.raises(errors.OrganizationExists):
        await insert_rows(accord.db, organizations, org("acme"))


@pytest.mark.parametrize("slug", ["Acme", "acme corp", "-acme", "acme-", ""])
async def test_slug_format(accord: Accord, slug: str) -> None:
    with pytest.raises(ConstraintViolated) as caught:
        await insert_rows(accord.db, organizations, org(slug))
    assert caught.value.constraint == "ck_organizations_slug_format"


async def test_unique_remote_id_per_provider(accord: Accord) -> None:
    a, b = user("a@example.com"), user("b@example.com")
    await insert_rows(accord.db, users, a, b)
    link = {"provider": "auth0", "remote_id": "auth0|1", "created_by_accord": True}
    await insert_rows(accord.db, idp_links, {"user_id": a["id"], **link})
    with pytest.raises(ConstraintViolated) as caught:
        await insert_rows(accord.db, idp_links, {"user_id": b["id"], **link})
    assert caught.value.constraint == "uq_idp_links_provider_remote_id"


@pytest.mark.parametrize("how", ["link", "link_unless_held"])
async def test_two_users_linking_one_identity_at_once_one_is_refused(
    accord: Accord, how: str
) -> None:
    """The second link waits for the first's transaction (the unique index on provider and
    remote id), then is refused: neither way of linking looks the holder up and misses it."""
    a, b = user("a@example.com"), user("b@example.com")
    await insert_rows(accord.db, users, a, b)
    link = {"provider": "auth0", "remote_id": "auth0|1", "created_by_accord": True}
    async with accord.store.transaction() as first:
        await first.links.link(user_id=a["id"], **link)

        async def second() -> None:
            async with accord.store.transaction() as tx:
                await getattr(tx.links, how)(user_id=b["id"], **link)

        racing = asyncio.create_task(second())

        async def waits() -> bool:
            return racing.done() or await scalar(accord, WAITING_ON_LOCKS) >= 1

        await until(waits, "the second link waits for the first")
    with pytest.raises(ConstraintViolated) as caught:
        await asyncio.wait_for(racing, PATIENCE)
    assert caught.value.constraint == "uq_idp_links_provider_remote_id"
    async with accord.store.transaction() as tx:
        assert await tx.links.holder("auth0", "auth0|1") == a["id"]
        assert await tx.links.get(b["id"], "auth0") is None


async def test_one_membership_per_user_and_organization(accord: Accord) -> None:
    a, acme = user("a@example.com"), org("acme")
    await insert_rows(accord.db, users, a)
    await insert_rows(accord.db, organizations, acme)
    row = {"user_id": a["id"], "organization_id": acme["id"], "role": "org_user"}
    await insert_rows(accord.db, memberships, row)
    with pytest.raises(ConstraintViolated) as caught:
        await insert_rows(accord.db, memberships, {**row, "role": "org_admin"})
    assert caught.value.constraint == "pk_memberships"


@pytest.mark.parametrize(
    ("table", "row", "error", "constraint"),
    [
        (users, user("s@example.com", status="deleted"), ConstraintViolated, "ck_users_status"),
        (organizations, org("k", kind="family"), ConstraintViolated, "ck_organizations_kind"),
        (
            organizations,
            org("m", max_users=0),
            errors.InvalidInput,
            "ck_organizations_max_users_positive",
        ),
        (
            api_tokens,
            {
                "id": uuid.uuid4(),
                "digest": "d",
                "name": "n",
                "scope": "platform",
                "organization_id": uuid.uuid4(),
            },
            ConstraintViolated,
            "ck_api_tokens_organization_matches_scope",
        ),
    ],
)
async def test_states_kinds_and_scopes_outside_the_allowed_set(
    accord: Accord, table, row: dict, error: type[errors.AccordError], constraint: str
) -> None:
    with pytest.raises(errors.AccordError) as caught:
        await insert_rows(accord.db, table, row)
    assert type(caught.value) is error
    # The database's own report, whichever domain error it was translated to.
    assert constraint_name(caught.value.__cause__) == constraint
    if isinstance(caught.value, ConstraintViolated):
        assert caught.value.constraint == constraint


async def test_role_outside_the_allowed_set(accord: Accord) -> None:
    a, acme = user("a@example.com"), org("acme")
    await insert_rows(accord.db, users, a)
    await insert_rows(accord.db, organizations, acme)
    with pytest.raises(ConstraintViolated) as caught:
        await insert_rows(
            accord.db,
            memberships,
            {"user_id": a["id"], "organization_id": acme["id"], "role": "superuser"},
        )
    assert caught.value.constraint == "ck_memberships_role"


async def test_idempotency_key_unique_per_caller(accord: Accord) -> None:
    from datetime import UTC, datetime

    from accord.adapters.db.tables import operations

    def op(caller: str) -> dict:
        return {
            "id": uuid.uuid4(),
            "kind": "create_user",
            "caller": caller,
            "idempotency_key": "k1",
            "request_digest": "d",
            "request": {},
            "state": "open",
            "recovery_point": "claimed",
            "deadline_at": datetime.now(UTC),
        }

    await insert_rows(accord.db, operations, op("platform"), op("org:1"))
    # A second operation for one caller and key means "the first is still running".
    with pytest.raises(errors.OperationInProgress):
        await insert_rows(accord.db, operations, op("platform"))
