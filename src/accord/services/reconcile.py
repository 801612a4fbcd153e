"""Reconcile: find the drift between accord's rows and the identity provider, and repair the
part of it that is safe to repair.

**The join.** Every IdP user is streamed page by page through the adapter and copied into a
temporary table of a dedicated database session (adapters/db/drift.py); PostgreSQL then joins it
with ``users`` and ``idp_links`` by remote id and by normalized e-mail, and the rows that are not
plainly healthy come back through server-side cursors. Why not a merge of two sorted streams:
the IdP's order cannot be chosen (Auth0 exports in its own), so one side would need an external
sort anyway, and PostgreSQL is already the place that sorts and spills to disk. Why not a
``get`` per linked row: that is one IdP call per user, a million calls under vendor rate limits.
Memory in this process is one page of the listing (``STAGE_BATCH`` rows) plus one batch of
results, whatever the number of users; only the findings themselves are kept, by the caller.

**Snapshots and lag.** A listing is older than the database by the time the join runs (Auth0's
export is a snapshot taken when its job started; offset paging can skip a user deleted during
it). So absence from the listing is only a suspicion: a linked row whose IdP user is missing is
confirmed with ``get`` before it is called an orphan, and every repair re-reads what it changes.

**Order.** Stuck operations first (resuming them settles their rows and IdP users), then the
listing, then rows, then unlinked IdP users (after the row repairs, which may have linked some),
then organizations. Work owned by an open operation is skipped throughout. One reconcile per
provider at a time (an advisory lock held by the dedicated session).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from accord.domain import drift
from accord.domain.drift import (
    DriftClass,
    Finding,
    ForeignPolicy,
    IdpUserView,
    OrphanRowPolicy,
    ReconcileRunning,
    RowView,
)
from accord.domain.store import DriftSession
from accord.services import repairs
from accord.services.context import Context

STAGE_BATCH = 5000  # IdP users per COPY into the staging table
PAGE_SIZE = 500  # IdP users per page of the adapter's listing
CONFIRM_BATCH = 64  # rows judged together; links missing from the listing confirmed at once
CONFIRM_CONCURRENCY = 8  # IdP reads in flight while confirming

# progress(stage, done): called as work advances; done counts the stage's items so far.
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class ReconcileOptions:
    """What to repair, and how patient to be with operations that look idle."""

    fix: bool = False
    orphan_rows: OrphanRowPolicy = OrphanRowPolicy.REPORT
    foreign_idp_users: ForeignPolicy = ForeignPolicy.REPORT
    grace_seconds: float = 300.0  # an idle operation waits this long for a worker first
    actor: str = "reconcile"

    def __post_init__(self) -> None:
        object.__setattr__(self, "orphan_rows", OrphanRowPolicy(self.orphan_rows))
        object.__setattr__(self, "foreign_idp_users", ForeignPolicy(self.foreign_idp_users))


@dataclass
class Report:
    """What a reconcile found and did; keeps the findings unless ``keep`` is False."""

    fix: bool
    keep: bool = True
    findings: dict[DriftClass, list[Finding]] = field(
        default_factory=lambda: {c: [] for c in DriftClass}
    )
    found: dict[DriftClass, int] = field(default_factory=lambda: dict.fromkeys(DriftClass, 0))
    fixed: dict[DriftClass, int] = field(default_factory=lambda: dict.fromkeys(DriftClass, 0))

    def add(self, finding: Finding) -> None:
        self.found[finding.drift] += 1
        self.fixed[finding.drift] += finding.done
        if self.keep:
            self.findings[finding.drift].append(finding)

    @property
    def remaining(self) -> int:
        """Drift still there after this run (in a dry run: all of it)."""
        return sum(self.found.values()) - sum(self.fixed.values())

    def as_dict(self) -> dict[str, Any]:
        """One JSON object: a list per class, then a summary."""
        body: dict[str, Any] = {
            c.value: [f.as_dict() for f in self.findings[c]] for c in DriftClass
        }
        body["summary"] = {
            c.value: {"found": self.found[c], "fixed": self.fixed[c]} for c in DriftClass
        }
        body["fix"] = self.fix
        body["drift_remaining"] = self.remaining
        return body


async def reconcile(
    accord: Context,
    options: ReconcileOptions,
    *,
    progress: Progress | None = None,
    keep: bool = True,
) -> Report:
    """Run one reconcile and return its report (see ``findings`` for the streaming form)."""
    report = Report(fix=options.fix, keep=keep)
    async with aclosing(findings(accord, options, progress=progress)) as stream:
        async for finding in stream:
            report.add(finding)
    return report


async def findings(
    accord: Context, options: ReconcileOptions, *, progress: Progress | None = None
) -> AsyncGenerator[Finding, None]:
    """Every finding, class by class, each repaired first when ``options.fix`` says so."""
    session = accord.store.drift_session(accord.idp.name)
    if not await session.try_lock():
        raise ReconcileRunning(
            f"Another reconcile is running against the {accord.idp.name} identity provider; "
            "this one stops. Run it again when that one has finished."
        )
    tick = progress or (lambda stage, done: None)
    try:
        async for finding in _stuck_operations(session, options, tick):
            yield await _settle(accord, finding, options)
        await _stage_listing(accord, session, tick)
        async for finding in _rows(accord, session, options, tick):
            yield await _settle(accord, finding, options)
        async for finding in _idp_users(session, options, tick):
            yield await _settle(accord, finding, options)
        async for finding in _organizations(session, tick):
            yield finding
    finally:
        await session.close()


async def _settle(accord: Context, finding: Finding, options: ReconcileOptions) -> Finding:
    if options.fix:
        await repairs.apply(accord, finding, options.actor)
    return finding


async def _stuck_operations(
    session: DriftSession, options: ReconcileOptions, tick: Progress
) -> AsyncIterator[Finding]:
    stuck = [
        dict(op) async for op in session.stuck_operations(options.grace_seconds)
    ]  # read before resuming any: resuming changes the rows a cursor would walk
    for done, op in enumerate(stuck, 1):
        tick("stuck operations", done)
        yield drift.stuck_operation(op)


async def _stage_listing(accord: Context, session: DriftSession, tick: Progress) -> None:
    """Copy the whole IdP listing into the session's staging table, a batch at a time."""
    await session.create_staging()
    batch: list[tuple[str | None, ...]] = []
    listed = 0
    async for user in accord.idp.iter_users(page_size=PAGE_SIZE):
        batch.append(
            (
                user.remote_id,
                user.email,
                drift.email_key(user.email),
                user.accord_user_id,
                "true" if user.enabled else "false",
            )
        )
        if len(batch) >= STAGE_BATCH:
            await session.stage(batch)
            listed += len(batch)
            batch.clear()
            tick("listing IdP users", listed)
    await session.stage(batch)
    tick("listing IdP users", listed + len(batch))
    await session.index_staging()
    tick("indexing the listing", 1)


async def _rows(
    accord: Context, session: DriftSession, options: ReconcileOptions, tick: Progress
) -> AsyncIterator[Finding]:
    checked = 0
    batch: list[RowView] = []
    async for record in session.rows_with_drift():
        batch.append(RowView(**record))
        if len(batch) == CONFIRM_BATCH:
            async for finding in _judge_rows(accord, batch, options):
                yield finding
            checked += len(batch)
            tick("checking rows", checked)
            batch = []
    async for finding in _judge_rows(accord, batch, options):
        yield finding
    tick("checking rows", checked + len(batch))


async def _judge_rows(
    accord: Context, rows: list[RowView], options: ReconcileOptions
) -> AsyncIterator[Finding]:
    """Classify a batch of rows; a link the listing lacked is confirmed with ``get`` first
    (a few at a time: for a vendor, each is a round trip)."""
    gate = asyncio.Semaphore(CONFIRM_CONCURRENCY)

    async def confirmed(row: RowView) -> tuple[str | None, bool | None]:
        if not row.link_remote_id or row.link_email is not None:
            return row.link_email, row.link_enabled
        async with gate:
            remote = await repairs.read_remote(accord, row.link_remote_id)
        return (remote.email, remote.enabled) if remote else (None, None)

    answers = await asyncio.gather(*(confirmed(row) for row in rows))
    for row, (remote_email, enabled) in zip(rows, answers, strict=True):
        finding = drift.classify_row(row, remote_email, options.orphan_rows, enabled)
        if finding is not None:
            yield finding


async def _idp_users(
    session: DriftSession, options: ReconcileOptions, tick: Progress
) -> AsyncIterator[Finding]:
    checked = 0
    async for record in session.unlinked_idp_users():
        checked += 1
        tick("checking unlinked IdP users", checked)
        yield drift.classify_idp_user(IdpUserView(**record), options.foreign_idp_users)


async def _organizations(session: DriftSession, tick: Progress) -> AsyncIterator[Finding]:
    checked = 0
    async for owner in session.duplicate_organizations():
        checked += 1
        tick("checking organizations", checked)
        yield drift.duplicate_organizations(dict(owner))
