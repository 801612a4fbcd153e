"""One contract for the store port, run against PostgreSQL and the in-memory store: the fake that
the engine's unit tests use cannot drift from the real one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from accord.adapters.db.database import Database
from accord.adapters.db.engine import async_engine
from accord.adapters.db.store import PgStore
from accord.domain import errors
from accord.domain.model import (
    OperationKind,
    OperationState,
    OrganizationKind,
    RecoveryPoint,
    Role,
    TokenPurpose,
    TokenScope,
    UserStatus,
)
from accord.domain.records import AuditEvent, NewOperation, NewOrganizationRecord
from accord.domain.store import Store
from accord.services.context import SystemClock
from accord.testing import InMemoryStore


@pytest.fixture(params=["postgres", "memory"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield InMemoryStore(SystemClock())
        return
    database_url = request.getfixturevalue("database_url")
    db = Database(async_engine(database_url, pool_size=2))
    try:
        yield PgStore(db)
    finally:
        await db.dispose()


async def user(store: Store, email: str = "ada@example.com") -> UUID:
    async with store.transaction() as tx:
        user_id = await tx.users.claim(
            user_id=uuid4(), email=email, full_name="Ada", created_by="test"
        )
    assert user_id is not None
    return user_id


async def org(store: Store, slug: str = "acme", **kw) -> UUID:
    async with store.transaction() as tx:
        made = await tx.organizations.insert(
            NewOrganizationRecord(
                id=uuid4(), slug=slug, display_name=slug, kind=kw.pop("kind", "team"), **kw
            )
        )
    assert made is not None
    return made.id


def operation(key: str | None = "k", **kw) -> NewOperation:
    now = datetime.now(UTC)
    return NewOperation(
        id=uuid4(),
        kind=OperationKind.CREATE_USER,
        caller="token:t",
        idempotency_key=key,
        request_digest="d",
        request={"email": "ada@example.com"},
        sealed_secrets=None,
        state=OperationState.OPEN,
        recovery_point=RecoveryPoint.CLAIMED,
        deadline_at=now + timedelta(hours=1),
        lease_until=kw.pop("lease_until", None),
        **kw,
    )


# -- users ----------------------------------------------------------------------------------------


async def test_claim_is_one_row_per_email_and_never_reclaims_a_retired_one(store: Store) -> None:
    first = await user(store)
    async with store.transaction() as tx:
        taken = await tx.users.claim(
            user_id=uuid4(), email="ada@example.com", full_name="X", created_by="t"
        )
        assert taken is None
        await tx.users.retire(first)
        new_id = uuid4()
        again = await tx.users.claim(
            user_id=new_id, email="ada@example.com", full_name="Ada II", created_by="t"
        )
        record = await tx.users.get(first)
    assert again == new_id  # a new person: the retired row is left as it was
    assert (record.status, record.email, record.former_email, record.full_name) == (
        UserStatus.DISABLED,
        None,
        "ada@example.com",
        "Ada",
    )


async def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.users.claim(
                user_id=uuid4(), email="x@example.com", full_name="X", created_by="t"
            )
            raise RuntimeError("the block fails")
    async with store.transaction() as tx:
        assert await tx.users.by_email("x@example.com") is None


async def test_hold_email_takes_the_index_and_release_frees_it(store: Store) -> None:
    async with store.transaction() as tx:
        held, placeholder = await tx.users.hold_email("new@example.com")
        assert held and placeholder is not None
        assert (
            await tx.users.insert_adopted(email="new@example.com", full_name="N", created_by="t")
            is None
        )
        await tx.users.release_email(placeholder)
        assert await tx.users.by_email("new@example.com") is None
    await user(store, "live@example.com")
    async with store.transaction() as tx:
        assert await tx.users.hold_email("live@example.com") == (False, None)


async def test_views_list_memberships_and_page_in_id_order(store: Store) -> None:
    acme = await org(store)
    ids = sorted([await user(store, f"u{i}@example.com") for i in range(3)])
    async with store.transaction() as tx:
        await tx.memberships.put(
            user_id=ids[1], organization_id=acme, role=Role.ORG_ADMIN, permissions=["a", "b"]
        )
        page = await tx.users.list(after=ids[0], limit=1)
        members = await tx.users.list(organization_id=acme)
        view = await tx.users.view(ids[1])
        summary = await tx.organizations.summary(acme)
    assert [v.user.id for v in page] == [ids[1]]
    assert [v.user.id for v in members] == [ids[1]]
    assert view.memberships[0].role == Role.ORG_ADMIN and view.memberships[0].permissions == (
        "a",
        "b",
    )
    assert summary.members == 1


async def test_update_view_reads_the_user_as_changed_with_what_the_transaction_put(
    store: Store,
) -> None:
    acme, ada = await org(store), await user(store)
    async with store.transaction() as tx:
        await tx.memberships.put(
            user_id=ada, organization_id=acme, role=Role.ORG_USER, permissions=["p"]
        )
        view = await tx.users.update_view(ada, status=UserStatus.PENDING, full_name="Ada L.")
        again = await tx.users.view(ada)
        held, placeholder = await tx.users.hold_email("held@example.com")
        assert held and placeholder is not None
        hidden = await tx.users.update_view(placeholder, require_password_change=True)
        missing = await tx.users.update_view(uuid4(), full_name="Nobody")
    assert view == again  # the same document ``view`` reads, in the same round trip
    assert (view.user.status, view.user.full_name, view.user.version) == (
        UserStatus.PENDING,
        "Ada L.",
        2,
    )
    assert [(m.organization_id, m.role, m.permissions) for m in view.memberships] == [
        (acme, Role.ORG_USER, ("p",))
    ]
    assert hidden is None and missing is None  # a row holding an address is no one, as in view


async def test_deleting_a_user_removes_its_links_and_memberships(store: Store) -> None:
    acme, ada = await org(store), await user(store)
    async with store.transaction() as tx:
        await tx.links.link(user_id=ada, provider="p", remote_id="r", created_by_accord=True)
        await tx.memberships.put(
            user_id=ada, organization_id=acme, role=Role.ORG_USER, permissions=[]
        )
        await tx.users.delete(ada)
        assert await tx.links.holder("p", "r") is None
        assert await tx.memberships.count(acme) == 0


# -- links, memberships, organizations -----------------------------------------------------------


async def test_an_identity_is_linked_to_one_user_and_a_relink_replaces(store: Store) -> None:
    ada, bob = await user(store), await user(store, "bob@example.com")
    async with store.transaction() as tx:
        await tx.links.link(user_id=ada, provider="p", remote_id="r1", created_by_accord=True)
        await tx.links.link(user_id=ada, provider="p", remote_id="r2", created_by_accord=False)
        link = await tx.links.get(ada, "p")
        assert (link.remote_id, link.created_by_accord) == ("r2", False)
        assert await tx.links.holder("p", "r1") is None
    with pytest.raises(errors.ConstraintViolated) as refused:
        async with store.transaction() as tx:
            await tx.links.link(user_id=bob, provider="p", remote_id="r2", created_by_accord=True)
    assert refused.value.constraint == "uq_idp_links_provider_remote_id"
    async with store.transaction() as tx:
        assert await tx.links.holder("p", "r2") == ada
        assert await tx.links.get(bob, "p") is None


async def test_link_unless_held_names_the_holder_and_writes_nothing(store: Store) -> None:
    ada, bob = await user(store), await user(store, "bob@example.com")
    async with store.transaction() as tx:
        linked = {"provider": "p", "remote_id": "r1", "created_by_accord": True}
        assert await tx.links.link_unless_held(user_id=ada, **linked) is None
        assert await tx.links.link_unless_held(user_id=ada, **linked) is None  # its own: kept
        assert await tx.links.link_unless_held(user_id=bob, **linked) == ada
        assert await tx.links.get(bob, "p") is None  # nothing written for bob
        relinked = {"provider": "p", "remote_id": "r2", "created_by_accord": False}
        assert await tx.links.link_unless_held(user_id=ada, **relinked) is None
        link = await tx.links.get(ada, "p")
        assert (link.remote_id, link.created_by_accord) == ("r2", False)
        assert await tx.links.holder("p", "r1") is None


async def test_a_membership_needs_its_organization(store: Store) -> None:
    ada = await user(store)
    with pytest.raises(errors.OrganizationNotFound):
        async with store.transaction() as tx:
            await tx.memberships.put(
                user_id=ada, organization_id=uuid4(), role=Role.ORG_USER, permissions=[]
            )


async def test_slugs_and_personal_owners_are_unique(store: Store) -> None:
    owner = await user(store)
    await org(store, "acme")
    await org(store, "bob", kind=OrganizationKind.PERSONAL, owner_user_id=owner)
    async with store.transaction() as tx:
        same_slug = NewOrganizationRecord(uuid4(), "acme", "Acme 2", OrganizationKind.TEAM)
        second_personal = NewOrganizationRecord(
            uuid4(), "bob-2", "Bob", OrganizationKind.PERSONAL, owner_user_id=owner
        )
        assert await tx.organizations.insert(same_slug) is None
        assert await tx.organizations.insert(second_personal) is None
        personal = await tx.organizations.personal_of(owner)
        assert personal.slug == "bob"
        assert [s.organization.slug for s in await tx.organizations.summaries()] == ["acme", "bob"]


async def test_deleting_an_organization_removes_memberships_and_tokens(store: Store) -> None:
    acme, ada = await org(store), await user(store)
    async with store.transaction() as tx:
        await tx.memberships.put(
            user_id=ada, organization_id=acme, role=Role.ORG_ADMIN, permissions=[]
        )
        await tx.api_tokens.insert(
            token_id=uuid4(),
            digest="d" * 64,
            name="t",
            scope=TokenScope.ORGANIZATION,
            organization_id=acme,
        )
        await tx.organizations.delete(acme)
        assert await tx.memberships.organizations_of(ada) == []
        assert await tx.api_tokens.live("d" * 64) is None


async def test_the_leavers_of_an_organization_are_its_members_with_nowhere_else(
    store: Store,
) -> None:
    acme, globex, empty = await org(store), await org(store, "globex"), await org(store, "empty")
    only_acme, both = await user(store), await user(store, "bob@example.com")
    async with store.transaction() as tx:
        for person, place in ((only_acme, acme), (both, acme), (both, globex)):
            await tx.memberships.put(
                user_id=person, organization_id=place, role=Role.ORG_USER, permissions=[]
            )
        assert await tx.memberships.lock_leavers(acme) == [only_acme]
        assert await tx.memberships.lock_leavers(globex) == []
        assert await tx.memberships.lock_leavers(empty) == []


# -- operations -----------------------------------------------------------------------------------


async def test_one_operation_per_caller_and_key(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.operations.insert(operation("k"))
    with pytest.raises(errors.OperationInProgress):
        async with store.transaction() as tx:
            await tx.operations.insert(operation("k"))
    async with store.transaction() as tx:  # no key: any number
        await tx.operations.insert(operation(None))
        await tx.operations.insert(operation(None))


async def test_advance_is_a_compare_and_set_on_the_recovery_point(store: Store) -> None:
    new = operation()
    async with store.transaction() as tx:
        await tx.operations.insert(new)
        moved = await tx.operations.advance(
            new.id, RecoveryPoint.CLAIMED, recovery_point=RecoveryPoint.IDP_ENSURED, remote_id="r"
        )
        stale = await tx.operations.advance(new.id, RecoveryPoint.CLAIMED, remote_id="other")
        done = await tx.operations.advance(
            new.id,
            (RecoveryPoint.CLAIMED, RecoveryPoint.IDP_ENSURED),
            state=OperationState.SUCCEEDED,
            recovery_point=RecoveryPoint.FINISHED,
        )
        after_end = await tx.operations.advance(new.id, RecoveryPoint.FINISHED, remote_id="x")
    assert moved.remote_id == "r" and stale is None and after_end is None
    assert done.is_terminal


async def test_leases_go_to_one_runner_at_a_time(store: Store) -> None:
    free, held = operation("a"), operation("b", lease_until=datetime.now(UTC) + timedelta(hours=1))
    async with store.transaction() as tx:
        await tx.operations.insert(free)
        await tx.operations.insert(held)
    async with store.transaction() as tx:
        leased = await tx.operations.lease_due(limit=10, lease_seconds=60)
        assert [op.id for op in leased] == [free.id] and leased[0].attempts == 2
        assert await tx.operations.take_lease(free.id, 60) is None
        assert await tx.operations.take_lease(held.id, 60) is None
        await tx.operations.release_lease(free.id)
        assert (await tx.operations.take_lease(free.id, 60)).attempts == 2


async def test_open_claims_count_create_operations_of_the_organization(store: Store) -> None:
    acme = await org(store)
    new = operation()
    async with store.transaction() as tx:
        await tx.operations.insert(new)
        await tx.operations.advance(new.id, RecoveryPoint.CLAIMED, organization_id=acme)
        assert await tx.operations.count_open_claims(acme) == 1
        assert await tx.operations.open_touching(user_id=None, email="ada@example.com") == new.id
        assert await tx.operations.open_by_kind() == {"create_user": 1}
        await tx.operations.advance(
            new.id, RecoveryPoint.CLAIMED, recovery_point=RecoveryPoint.COMPENSATING
        )
        assert await tx.operations.count_open_claims(acme) == 0


# -- outbox, tokens, audit ------------------------------------------------------------------------


async def test_the_outbox_keeps_one_message_per_key_and_leases_it(store: Store) -> None:
    async with store.transaction() as tx:
        for _ in range(2):
            await tx.outbox.enqueue(
                kind="k", dedupe_key="one", recipient="a@example.com", payload={}
            )
        (message,) = await tx.outbox.lease_due(limit=10, lease_seconds=60)
        assert await tx.outbox.lease_due(limit=10, lease_seconds=60) == []
        await tx.outbox.mark_failed(message.id, "down", retry_in=0)
    async with store.transaction() as tx:
        (again,) = await tx.outbox.lease_due(limit=10, lease_seconds=60)
        await tx.outbox.mark_sent(again.id)
        assert again.attempts == 2
        assert await tx.outbox.lease_due(limit=10, lease_seconds=0) == []


async def test_a_token_if_live_is_minted_only_for_a_user_who_may_sign_in(store: Store) -> None:
    ada, bob = await user(store, "ada@example.com"), await user(store, "bob@example.com")
    later = datetime.now(UTC) + timedelta(hours=1)

    async def mint(tx, digest: str, user_id: UUID) -> bool:
        return await tx.one_time_tokens.insert_if_live(
            digest=digest, user_id=user_id, purpose=TokenPurpose.PASSWORD_SETUP, expires_at=later
        )

    async with store.transaction() as tx:
        assert not await mint(tx, "a" * 64, ada)  # still provisioning: no one to sign in yet
        await tx.users.update(ada, status=UserStatus.PENDING)
        await tx.users.update(bob, status=UserStatus.SUSPENDED)
        assert await mint(tx, "b" * 64, ada)
        assert not await mint(tx, "c" * 64, bob)
        assert not await mint(tx, "d" * 64, uuid4())
        found = [await tx.one_time_tokens.find_live(d * 64) for d in "abcd"]
    assert [t is not None for t in found] == [False, True, False, False]
    assert (found[1].user_id, found[1].purpose) == (ada, TokenPurpose.PASSWORD_SETUP)


async def test_a_one_time_token_is_used_once_and_expires(store: Store) -> None:
    ada = await user(store)
    later = datetime.now(UTC) + timedelta(hours=1)
    async with store.transaction() as tx:
        await tx.one_time_tokens.insert(
            digest="a" * 64, user_id=ada, purpose=TokenPurpose.PASSWORD_SETUP, expires_at=later
        )
        await tx.one_time_tokens.insert(
            digest="b" * 64,
            user_id=ada,
            purpose=TokenPurpose.PASSWORD_SETUP,
            expires_at=datetime.now(UTC) - timedelta(seconds=1),
        )
        live = await tx.one_time_tokens.find_live("a" * 64)
        assert await tx.one_time_tokens.find_live("b" * 64) is None
        assert await tx.one_time_tokens.consume(live.id) is True
        assert await tx.one_time_tokens.consume(live.id) is False
        assert await tx.one_time_tokens.find_live("a" * 64) is None
        assert await tx.one_time_tokens.expire() == 1


async def test_an_api_token_is_revoked_once_and_found_by_digest(store: Store) -> None:
    token_id = uuid4()
    async with store.transaction() as tx:
        record = await tx.api_tokens.insert(
            token_id=token_id,
            digest="c" * 64,
            name="n",
            scope=TokenScope.PLATFORM,
            organization_id=None,
        )
        assert (await tx.api_tokens.live("c" * 64)).id == record.id
        assert await tx.api_tokens.revoke(token_id) and await tx.api_tokens.revoke(token_id)
        assert await tx.api_tokens.live("c" * 64) is None
        assert await tx.api_tokens.revoke(uuid4()) is False
        await tx.audit.record(AuditEvent(actor="t", action="api_token.revoked"))


async def test_a_released_one_time_token_can_be_used_again(store: Store) -> None:
    ada = await user(store)
    later = datetime.now(UTC) + timedelta(hours=1)
    async with store.transaction() as tx:
        await tx.one_time_tokens.insert(
            digest="d" * 64, user_id=ada, purpose=TokenPurpose.PASSWORD_SETUP, expires_at=later
        )
        token = await tx.one_time_tokens.find_live("d" * 64)
        assert await tx.one_time_tokens.consume(token.id) is True
        await tx.one_time_tokens.release(token.id)
        assert (await tx.one_time_tokens.find_live("d" * 64)).id == token.id
        assert await tx.one_time_tokens.consume(token.id) is True
