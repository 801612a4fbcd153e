"""The worker: finishes every operation, delivers the outbox, expires what has outlived itself.

Any number of workers, on any number of machines, share the work through PostgreSQL alone:
operations and messages are leased with ``FOR UPDATE SKIP LOCKED`` (each goes to one worker),
and a lease that outlives its worker (a crash) makes the work due again. The housekeeping pass
runs under an advisory lock, so one worker at a time does it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from accord.domain import errors
from accord.domain.ports import Mailer
from accord.domain.records import OperationRecord
from accord.services import bulk_resume
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
# The shortest idle sleep: work due at once that a pass left (it could not open its secrets)
# is retried at this pace, not in a busy loop.
MIN_IDLE_SECONDS = 0.2
# Operations leased at once where the store can finish them set-wise (services/bulk_resume.py):
# a batch costs a handful of statements whatever its size, and at this size it is done well
# within its lease (a resume of 3,000 finishes some 600 a second on 2 cores).
SET_WISE_BATCH = 250


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


async def resume_due_operations(accord: Context, result: Pass, *, limit: int | None = None) -> None:
    """Drive every due operation (up to ``limit``, default ``worker_pass_operations``) to its
    end or its next retry, ``worker_concurrency`` at once.

    Operations are leased in batches sized to the free places: as many as there are places at
    first, then again whenever a quarter of them has come free, so none waits leased for a
    place (its lease runs from the moment it is taken) and a backlog costs one leasing
    statement per batch, not per operation. Other workers lease beside this one (SKIP LOCKED).
    """
    settings = accord.settings
    budget = settings.worker_pass_operations if limit is None else limit
    if await bulk_resume.available(accord):
        await _resume_set_wise(accord, result, budget)
        return
    width = settings.worker_concurrency
    refill = max(1, width // 4)
    running: set[asyncio.Task[str]] = set()
    failure: BaseException | None = None
    more = True  # whether a lease may still find something due
    while True:
        free = min(width - len(running), budget)
        if more and failure is None and free >= min(refill, budget) and free > 0:
            leased = await _lease(accord, free)
            budget -= len(leased)
            more = len(leased) == free
            running |= {asyncio.create_task(_drive(accord, op)) for op in leased}
        if not running:
            break
        done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is not None:  # a bug or the database away: finish the rest
                failure = failure or task.exception()
                continue
            outcome = task.result()
            setattr(result, outcome, getattr(result, outcome) + 1)
    if failure is not None:
        raise failure


async def _resume_set_wise(accord: Context, result: Pass, budget: int) -> None:
    """``resume_due_operations`` where the store can finish operations set-wise: leased in
    batches of ``SET_WISE_BATCH`` (fewer when the budget or the work is smaller), the plain
    user creations of each finished together, the others driven one by one beside each other,
    ``worker_concurrency`` at once, before the next batch is leased."""
    gate = asyncio.Semaphore(accord.settings.worker_concurrency)

    async def one(op: OperationRecord) -> str:
        async with gate:
            return await _drive(accord, op)

    while budget > 0:
        count = min(SET_WISE_BATCH, budget)
        leased = await _lease(accord, count)
        budget -= len(leased)
        if not leased:
            return
        done, left = await bulk_resume.resume_batch(accord, leased)
        result.succeeded += done
        outcomes = await asyncio.gather(*(one(op) for op in left), return_exceptions=True)
        failure: BaseException | None = None
        for outcome in outcomes:
            if isinstance(outcome, BaseException):  # a bug or the database away
                failure = failure or outcome
            else:
                setattr(result, outcome, getattr(result, outcome) + 1)
        if failure is not None:
            raise failure
        if len(leased) < count:
            return


async def _lease(accord: Context, count: int) -> list[OperationRecord]:
    async with accord.store.transaction() as tx:
        return await tx.operations.lease_due(
            limit=count, lease_seconds=accord.settings.operation_lease_seconds
        )


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
    """Work until ``stop`` is set; then finish the pass in hand (its leases end with it).

    Between passes that found nothing, the worker sleeps until the first of: a work notice
    (``accord.work_signal``: another process left work), the next retry or lease expiry it
    knows of, ``worker_poll_seconds`` (the fallback for notices lost), ``stop``.
    """
    passes = 0
    while not stop.is_set():
        try:
            result = await run_once(accord, mailer, housekeep=passes % 60 == 0)
            idle = None if result.busy else await idle_seconds(accord)
        except errors.StorageUnavailable:
            result, idle = Pass(), accord.settings.worker_poll_seconds  # wait, try again
        passes += 1
        if idle is not None:
            await _sleep(accord, stop, idle)


async def idle_seconds(accord: Context) -> float:
    """How long an idle worker may sleep: until the next operation or message it knows of
    falls due, at most ``worker_poll_seconds``, at least ``MIN_IDLE_SECONDS`` (work due now
    that this pass left, e.g. a secret this process cannot open, must not spin it)."""
    async with accord.store.transaction() as tx:
        due = [await tx.operations.due_in(), await tx.outbox.due_in()]
    poll = accord.settings.worker_poll_seconds
    soonest = min((d for d in due if d is not None), default=poll)
    return min(poll, max(soonest, MIN_IDLE_SECONDS))


async def _sleep(accord: Context, stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less: until ``stop`` is set or a work notice comes."""
    waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
    if accord.work_signal is not None:
        waits.append(asyncio.ensure_future(accord.work_signal.wait(seconds)))
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
