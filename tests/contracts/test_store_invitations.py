"""The store contract for invitations, run against PostgreSQL and the in-memory store like the
rest of ``test_store.py``: one pending invitation per address, the seat it holds, its link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from accord.domain.invitation_store import NewInvitation
from accord.domain.model import InvitationStatus, Role
from accord.domain.store import Store
from tests.contracts import test_store

store = test_store.store  # the same fixture: each case on both stores


def invitation(
    org_id: UUID, email: str = "ivy@example.com", *, hours: float = 1.0
) -> NewInvitation:
    return NewInvitation(
        id=uuid4(),
        organization_id=org_id,
        email=email,
        role=Role.ORG_USER,
        permissions=("read",),
        invited_by="admin@example.com",
        expires_at=datetime.now(UTC) + timedelta(hours=hours),
    )


async def seats(store: Store, org_id: UUID) -> int:
    async with store.transaction() as tx:
        found = await tx.organizations.lock_seats(org_id)
    assert found is not None
    return found[1]


async def test_one_pending_invitation_per_address_holds_one_seat(store: Store) -> None:
    org_id = await test_store.org(store)
    first = invitation(org_id)
    async with store.transaction() as tx:
        made = await tx.invitations.insert(first)
        assert made is not None and made.status == InvitationStatus.PENDING and made.sends == 1
        assert made.permissions == ("read",) and made.role == Role.ORG_USER
        assert await tx.invitations.insert(invitation(org_id)) is None
        assert (await tx.invitations.pending_for(org_id, "ivy@example.com")).id == first.id
    assert await seats(store, org_id) == 1
    async with store.transaction() as tx:
        assert await tx.invitations.mark(first.id, InvitationStatus.REVOKED) is True
        assert await tx.invitations.mark(first.id, InvitationStatus.ACCEPTED) is False
        assert (await tx.invitations.get(first.id)).revoked_at is not None
        assert await tx.invitations.insert(invitation(org_id)) is not None  # a new one may
    assert await seats(store, org_id) == 1


async def test_a_link_is_the_latest_mailing_s_and_a_resend_kills_the_old_one(store: Store) -> None:
    org_id = await test_store.org(store)
    new = invitation(org_id)
    async with store.transaction() as tx:
        await tx.invitations.insert(new)
        assert await tx.invitations.by_digest("a" * 64) is None  # not mailed yet
        assert (await tx.invitations.issue_link(new.id, 1, "a" * 64)).id == new.id
        assert (await tx.invitations.by_digest("a" * 64)).id == new.id
        resent = await tx.invitations.resend(new.id)
        assert resent.sends == 2
        assert await tx.invitations.by_digest("a" * 64) is None
        assert await tx.invitations.issue_link(new.id, 1, "b" * 64) is None  # an older mailing
        assert (await tx.invitations.issue_link(new.id, 2, "c" * 64)).sends == 2
        assert await tx.invitations.mark(new.id, InvitationStatus.ACCEPTED, user_id=None)
        assert (await tx.invitations.by_digest("c" * 64)).status == InvitationStatus.ACCEPTED
        assert await tx.invitations.resend(new.id) is None
        assert await tx.invitations.issue_link(new.id, 2, "d" * 64) is None


async def test_expired_invitations_free_their_seats_unless_being_accepted(store: Store) -> None:
    org_id = await test_store.org(store)
    old, accepting, fresh = (
        invitation(org_id, "old@example.com", hours=-1),
        invitation(org_id, "acc@example.com", hours=-1),
        invitation(org_id, "new@example.com"),
    )
    async with store.transaction() as tx:
        for new in (old, accepting, fresh):
            await tx.invitations.insert(new)
        await tx.invitations.set_accepting(accepting.id, uuid4())
    assert await seats(store, org_id) == 2  # the fresh one, and the one being accepted
    async with store.transaction() as tx:
        listed = await tx.invitations.list(org_id, status=InvitationStatus.EXPIRED)
        assert {i.id for i in listed} == {old.id, accepting.id}
        assert [i.id for i in await tx.invitations.expire()] == [old.id]
        assert (await tx.invitations.get(old.id)).status == InvitationStatus.EXPIRED
        assert (await tx.invitations.get(accepting.id)).status == InvitationStatus.PENDING
        pending = await tx.invitations.list(org_id, status=InvitationStatus.PENDING)
        assert [i.id for i in pending] == [fresh.id]
        every = await tx.invitations.list(org_id, limit=2)
        assert len(every) == 2
        rest = await tx.invitations.list(org_id, after=every[-1].id)
        assert {i.id for i in every + rest} == {old.id, accepting.id, fresh.id}


async def test_an_accepted_invitation_names_its_user_and_the_organization_takes_them(
    store: Store,
) -> None:
    org_id, user_id = await test_store.org(store), await test_store.user(store)
    new = invitation(org_id)
    async with store.transaction() as tx:
        await tx.invitations.insert(new)
        assert await tx.invitations.mark(new.id, InvitationStatus.ACCEPTED, user_id=user_id)
        accepted = await tx.invitations.get(new.id, lock=True)
        assert accepted.accepted_user_id == user_id and accepted.accepted_at is not None
        await tx.organizations.delete(org_id)
    async with store.transaction() as tx:
        assert await tx.invitations.get(new.id) is None  # they go with their organization


async def test_revoking_an_organizations_pending_invitations_frees_them_all(store: Store) -> None:
    acme, globex = await test_store.org(store), await test_store.org(store, "globex")
    ivy, gus, theirs = invitation(acme), invitation(acme, "gus@example.com"), invitation(globex)
    async with store.transaction() as tx:
        for new in (ivy, gus, theirs):
            assert await tx.invitations.insert(new) is not None
        await tx.invitations.mark(gus.id, InvitationStatus.REVOKED)
        assert await tx.invitations.revoke_pending(acme) == 1  # ivy; gus was revoked already
        assert (await tx.invitations.get(ivy.id)).status == InvitationStatus.REVOKED
        assert (await tx.invitations.get(theirs.id)).status == InvitationStatus.PENDING
    assert await seats(store, acme) == 0
    assert await seats(store, globex) == 1
