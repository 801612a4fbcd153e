"""The worker: finishes every operation, delivers the outbox, expires what has outlived itself.

Any number of workers, on any number of machines, share the work through PostgreSQL alone:
operations and messages are leased with ``FOR UPDATE SKIP LOCKED`` (each goes to one worker),
and a lease that outlives its worker (a crash) makes the work due again. The housekeeping pass
runs under an advisory lock, so one worker at a time does it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from accord.domain import errors
from accord.domain.ports import Mailer
from accord.domain.records import OperationRecord
from accord.services.context import Context
from accord.services.engine import drive, leased_step
from accord.services.events import assign_positions
from accord.services.invitations import expire_due
from accord.services.mail import Delivery, deliver_outbox
from accord.services.webhook_delivery import WebhookPass, deliver_webhooks

HOUSEKEEPING_LOCK_KEY = 0x61636377_686B7070  # "accwhkpp"
# Rows deleted per kind in one housekeeping pass: a backlog (a first run after an upgrade, a
# flood of requests) is worked off over several passes, never in one long transaction.
HOUSEKEEPING_BATCH = 1000


@dataclass
class Pass:
    """What one pass of the worker did."""

    succeeded: int = 0
    failed: int = 0
    postponed: int = 0
    # Left untouched: this process cannot open their secrets (a wrong ACCORD_SECRET_KEY). Not
    # work done, so a pass with only these is idle.
    misconfigured: int = 0
    mail: Delivery = field(default_factory=Delivery)
    webhooks: WebhookPass = field(default_factory=WebhookPass)
    expired_tokens: int = 0
    expired_verifications: int = 0
    expired_invitations: int = 0
    assigned_events: int = 0
    deleted_feed_events: int = 0
    forgotten_keys: int = 0
    deleted_operations: int = 0
    deleted_audit_events: int = 0
    swept_rate_limits: int = 0
    deleted_mail: int = 0

    @property
    def busy(self) -> bool:
        return bool(
            self.succeeded or self.failed or self.postponed or self.mail.sent or self.webhooks.busy
        )


async def resume_due_operations(accord: Context, result: Pass, *, limit: int = 10) -> None:
    """Lease the operations that are due and drive each to its end or its next retry."""
    async with accord.store.transaction() as tx:
        leased = await tx.operations.lease_due(
            limit=limit, lease_seconds=accord.settings.operation_lease_seconds
        )
    outcomes = await asyncio.gather(*(_drive(accord, op) for op in leased))
    for outcome in outcomes:
        setattr(result, outcome, getattr(result, outcome) + 1)


async def _drive(accord: Context, op: OperationRecord) -> str:
    try:
        step = await leased_step(accord, op)
    except errors.ConfigurationError:
        return "misconfigured"
    try:
        await drive(accord, step)
    except errors.OperationPending:
        return "postponed"
    except errors.ProviderMisconfigured:
        return "postponed"
    except errors.AccordError:
        return "failed"
    return "succeeded"


async def housekeeping(accord: Context, result: Pass) -> None:
    """Expire one-time tokens, verification links (their sealed passwords with them) and
    idempotency keys past their lifetime; delete finished operations once their key no longer
    replays (``idempotency_ttl_hours``), audit events past ``audit_retention_days`` (0: kept for
    ever), change feed events past ``events_retention_days``, embedded mailbox messages past
    ``mailbox_retention_days`` and spent throttle counters, each in batches of
    ``HOUSEKEEPING_BATCH`` (one worker at a time)."""
    settings = accord.settings
    async with accord.store.transaction() as tx:
        if not await tx.try_singleton_lock(HOUSEKEEPING_LOCK_KEY):
            return
        result.expired_tokens = await tx.one_time_tokens.expire()
        result.expired_verifications = await tx.verifications.expire()
        result.expired_invitations = await expire_due(tx)  # their seats are free
        result.forgotten_keys = await tx.operations.forget_idempotency(
            settings.idempotency_ttl_hours
        )
        result.deleted_operations = await tx.operations.delete_finished(
            settings.idempotency_ttl_hours, limit=HOUSEKEEPING_BATCH
        )
        if settings.audit_retention_days > 0:
            result.deleted_audit_events = await tx.audit.delete_older_than(
                settings.audit_retention_days, limit=HOUSEKEEPING_BATCH
            )
        result.deleted_feed_events = await tx.events.delete_older_than(
            settings.events_retention_days, limit=HOUSEKEEPING_BATCH
        )
        # The embedded mailbox's links are secrets in transit: kept only so long.
        result.deleted_mail = await tx.mailbox.delete_older_than(
            settings.mailbox_retention_days, limit=HOUSEKEEPING_BATCH
        )
    if accord.throttle is not None:
        result.swept_rate_limits = await accord.throttle.sweep(limit=HOUSEKEEPING_BATCH)


async def run_once(accord: Context, mailer: Mailer, *, housekeep: bool = True) -> Pass:
    """One pass: due operations, then due mail, then (optionally) housekeeping."""
    result = Pass()
    await resume_due_operations(accord, result)
    result.mail = await deliver_outbox(accord, mailer)
    result.assigned_events = await assign_positions(accord)
    result.webhooks = await deliver_webhooks(accord)
    if housekeep:
        await housekeeping(accord, result)
    return result


async def run_until_idle(accord: Context, mailer: Mailer, *, max_passes: int = 1000) -> Pass:
    """Passes until one finds nothing due: what tests and ``accord worker --once`` use."""
    total = Pass()
    for _ in range(max_passes):
        step = await run_once(accord, mailer)
        total.succeeded += step.succeeded
        total.failed += step.failed
        total.postponed += step.postponed
        total.misconfigured += step.misconfigured
        total.mail.sent += step.mail.sent
        total.mail.failed += step.mail.failed
        if not step.busy:
            break
    return total


async def run_forever(accord: Context, mailer: Mailer, stop: asyncio.Event) -> None:
    """Work until ``stop`` is set; then finish the pass in hand (its leases end with it)."""
    poll = accord.settings.worker_poll_seconds
    passes = 0
    while not stop.is_set():
        try:
            result = await run_once(accord, mailer, housekeep=passes % 60 == 0)
        except errors.StorageUnavailable:
            result = Pass()  # the database is away: wait and try again
        passes += 1
        if not result.busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll)
