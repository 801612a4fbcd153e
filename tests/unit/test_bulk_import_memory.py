"""The set-wise import on the in-memory store (accord.testing's MemoryBulk) and a fake IdP with a
bulk create: the same answers and the same rows as the per-row import of the same file."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from accord.domain.errors import RemoteConflict
from accord.domain.model import OperationState, UserStatus
from accord.domain.ports import NewRemoteUser, RemoteUser
from accord.services import bulk_import, importer
from accord.services.importer import import_users
from accord.testing import FakeContext, FakeIdentityProvider, fake_context
from tests.drift.test_bulk_import import people, write
from tests.drift.test_import import results
from tests.unit.test_engine import PLATFORM, new_org, tables


class BulkFake(FakeIdentityProvider):
    """The fake IdP with the bulk create's port (``CreatesMany``)."""

    async def existing(self, emails: Sequence[str]) -> set[str]:
        return {u.email for u in self.users.values()} & set(emails)

    async def find_many(self, emails: Sequence[str]) -> list[RemoteUser]:
        found = [await self.find_by_email(email) for email in emails]
        return [remote for remote in found if remote is not None]

    async def create_many(self, users: Sequence[NewRemoteUser]) -> list[RemoteUser]:
        made = []
        for user in users:
            try:
                made.append(await self.create(user))
            except RemoteConflict:
                continue  # left out: its caller looks it up the per-row way
        return made


async def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_size: int) -> dict[str, Any]:
    ctx: FakeContext = fake_context(idp=BulkFake())
    assert await bulk_import.available(ctx)
    org, small = await new_org(ctx, max_users=10), await new_org(ctx, "Small", max_users=3)
    await ctx.idp.create_direct("foreign@example.com")
    rows = [
        {"email": "foreign@example.com", "full_name": "F", "organization_id": str(org)},
        *people(org, 4),
        {"email": "p1@example.com", "full_name": "P 1", "organization_id": str(org)},  # twice
        *people(small, 5, start=5),  # 3 fit, 2 find the organization full
    ]
    source = write(tmp_path / f"u{batch_size}.csv", rows)
    per_row: Counter[str] = Counter()
    original = importer._provision

    async def counted(c: Any, row: dict[str, Any]) -> dict[str, Any]:
        per_row["rows"] += 1
        return await original(c, row)

    monkeypatch.setattr(importer, "_provision", counted)
    answers = [
        await import_users(
            ctx, source, caller=PLATFORM, batch_size=batch_size, results=tmp_path / f"{n}.jsonl"
        )
        for n in (f"first{batch_size}", f"second{batch_size}")
    ]
    first, second = answers
    monkeypatch.undo()
    t = tables(ctx)
    return {
        "per_row": per_row["rows"],
        "first": [(r["status"], r.get("code")) for r in results(Path(first.results))],
        "second": [(r["status"], r.get("code")) for r in results(Path(second.results))],
        "users": sorted((u.email, u.status) for u in t.users.values()),
        "members": sorted(Counter(m.organization_id for m in t.memberships.values()).values()),
        "links": len(t.links),
        "ops": Counter(op.state for op in t.operations.values()),
        "open": sum(op.state == OperationState.OPEN for op in t.operations.values()),
        "mail": sorted(m.recipient for m in t.outbox.values()),
        "identities": len(ctx.idp.users),
        "audit": Counter(e.event.action for e in t.audit),
    }


async def test_the_set_wise_import_in_memory_writes_what_the_per_row_import_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_wise = await run(tmp_path, monkeypatch, batch_size=500)
    alone = await run(tmp_path, monkeypatch, batch_size=0)

    # Per-row: the foreign identity, the second row for p1 and the two past the limit; in the
    # rerun the three whose operations failed (the second row for p1 replays set-wise).
    assert set_wise.pop("per_row") == 4 + 3
    assert alone.pop("per_row") == 2 * 11
    assert set_wise == alone
    assert set_wise["first"] == [
        ("error", "identity_exists"),
        *[("created", None)] * 4,
        ("exists", None),
        *[("created", None)] * 3,
        *[("error", "organization_full")] * 2,
    ]
    assert set(set_wise["second"][1:9]) == {("exists", None)}
    assert {s for _, s in set_wise["users"]} == {UserStatus.PENDING}
    assert len(set_wise["users"]) == set_wise["links"] == len(set_wise["mail"]) == 7
    assert set_wise["open"] == 0
