"""The store contract, memberships, organization changes and the mailbox (run against PostgreSQL
and the in-memory store)."""

from __future__ import annotations

from accord.domain.model import Role
from accord.domain.store import Store
from tests.contracts.test_store import org, store, user

__all__ = ["store"]


async def test_members_come_in_pages_by_user_id_with_their_email(store: Store) -> None:
    acme, other = await org(store, "acme"), await org(store, "other")
    people = sorted([await user(store, f"u{n}@example.com") for n in range(5)])
    async with store.transaction() as tx:
        for n, uid in enumerate(people):
            role = Role.ORG_ADMIN if n < 2 else Role.ORG_USER
            await tx.memberships.put(
                user_id=uid, organization_id=acme, role=role, permissions=["p"]
            )
        await tx.memberships.put(
            user_id=people[0], organization_id=other, role=Role.ORG_ADMIN, permissions=[]
        )
    async with store.transaction() as tx:
        first = await tx.memberships.page(acme, limit=3)
        rest = await tx.memberships.page(acme, after=first[-1].membership.user_id, limit=3)
        assert [m.membership.user_id for m in first + rest] == people
        assert first[0].email in {f"u{n}@example.com" for n in range(5)}
        assert first[0].membership.permissions == ("p",)
        assert await tx.memberships.count_admins(acme) == 2
        assert await tx.memberships.count_admins(other) == 1
        one = await tx.memberships.get(people[3], acme)
        assert one is not None and one.role == Role.ORG_USER
        assert await tx.memberships.get(people[3], other) is None


async def test_an_organization_update_changes_what_it_names_and_grows_the_version(
    store: Store,
) -> None:
    acme = await org(store, "acme")
    async with store.transaction() as tx:
        before = await tx.organizations.get(acme)
        after = await tx.organizations.update(acme, display_name="Acme Inc", max_users=3)
        assert before is not None and after is not None
        assert (after.display_name, after.max_users, after.status) == ("Acme Inc", 3, "trial")
        assert after.version == before.version + 1
        assert after.slug == before.slug
    async with store.transaction() as tx:
        again = await tx.organizations.update(acme, status="active")
        assert again is not None and again.version == before.version + 2
        assert (again.display_name, again.status) == ("Acme Inc", "active")


async def test_the_mailbox_lists_newest_first_by_recipient_and_forgets_old_mail(
    store: Store,
) -> None:
    async with store.transaction() as tx:
        ids = [
            await tx.mailbox.deliver(recipient=to, subject=f"s{n}", body=f"b{n}")
            for n, to in enumerate(["a@x.test", "b@x.test", "a@x.test"])
        ]
    async with store.transaction() as tx:
        assert [m.id for m in await tx.mailbox.list()] == ids[::-1]
        to_a = await tx.mailbox.list(recipient="a@x.test")
        assert [(m.id, m.subject) for m in to_a] == [(ids[2], "s2"), (ids[0], "s0")]
        assert [m.id for m in await tx.mailbox.list(before=ids[2], limit=1)] == [ids[1]]
        found = await tx.mailbox.get(ids[1])
        assert found is not None and (found.recipient, found.body) == ("b@x.test", "b1")
        assert await tx.mailbox.get(ids[2] + 1000) is None
    async with store.transaction() as tx:
        assert await tx.mailbox.delete_older_than(1.0, limit=10) == 0  # younger than a day
        assert await tx.mailbox.delete_older_than(0.0, limit=2) == 2
        assert [m.id for m in await tx.mailbox.list()] == [ids[2]]
