"""What every use case is given: the ports it may use, and the shape of a flow.

A use case takes a ``Context`` and nothing else from the outside world: the settings, the store
(its unit of work), the identity provider, the sealer, the clock, the extension hooks and the
table of flows the engine runs. ``accord.bootstrap`` builds the real one; tests build one from
the doubles in ``accord.testing`` (``accord.testing.fake_context``).

A ``Flow`` is one kind of durable operation (see ``services/operations.py`` for the protocol
that runs it): its claim, its IdP phase, its finalize and its undo.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from accord.domain.model import OperationKind
from accord.domain.ports import Clock, IdentityProvider, Sealer, Throttle, WorkSignal
from accord.domain.records import OperationRecord
from accord.domain.store import OperationChanges, Store, Transaction
from accord.domain.webhooks import WebhookTargets
from accord.services import crashpoints
from accord.services.crashpoints import CrashPoint
from accord.services.hooks import Hooks

if TYPE_CHECKING:
    from accord.config import Settings


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Step:
    """What a phase hands to the next: the record as committed, and the opened secrets."""

    op: OperationRecord
    secrets: dict[str, Any]
    # Set by an IdP phase that a failure stopped part-way: the flow_state that says what it
    # finished already, kept when the operation is postponed so the next attempt goes on from
    # there rather than from the start (a phase of many calls would otherwise need one attempt
    # with no failure at all).
    progress: dict[str, Any] | None = None


class Flow(ABC):
    """One kind of operation: its claim, its IdP phase, its finalize and its undo."""

    kind: ClassVar[OperationKind]

    @abstractmethod
    async def claim(self, tx: Transaction, accord: Context, step: Step) -> OperationChanges:
        """Inside transaction 1: reserve what the operation needs (raise a domain error to
        refuse). Returns what to set on the operation (user_id, organization_id, flow_state)."""

    async def claim_last(self, tx: Transaction, accord: Context, step: Step) -> None:
        """Inside transaction 1, after the operation's row and its audit event are written:
        the claim's last statements, where a lock other claims wait for is taken (the seat
        count, G5), so that it is held only from here to commit. Raise a domain error to
        refuse, as in ``claim``. By default nothing."""
        return None

    @abstractmethod
    async def ensure_remote(self, accord: Context, step: Step) -> OperationChanges:
        """Outside any transaction: bring the IdP to the wanted state. Returns the recovery
        point's columns (remote_id, created_remote, flow_state)."""

    @abstractmethod
    async def finalize(self, tx: Transaction, accord: Context, step: Step) -> dict[str, Any]:
        """Inside transaction 3: make the result true in the database; return the result."""

    async def undo_remote(self, accord: Context, step: Step) -> bool:
        """Outside any transaction: remove from the IdP what this operation created; say if
        anything was.

        Its recovery point may not say (the create succeeded, then a later call in the same
        phase failed, or the process died): then an identity carrying this operation's user id
        is the one it created. One it adopted carries another id and is never touched.
        """
        op = step.op
        remote_id = op.remote_id if op.created_remote else None
        if remote_id is None and op.user_id is not None and op.request.get("email"):
            found = await accord.idp.find_by_email(op.request["email"])
            if found is not None and found.accord_user_id == str(op.user_id):
                remote_id = found.remote_id
        if remote_id:
            await accord.idp.delete(remote_id)
            crashpoints.reach(accord.settings, CrashPoint.UNDO_SENT)
        return remote_id is not None

    @abstractmethod
    async def undo_claim(self, tx: Transaction, accord: Context, step: Step) -> None:
        """Inside the compensating transaction: remove what the claim reserved."""

    def secrets_after_idp(self, secrets: dict[str, Any]) -> dict[str, Any]:
        """The secrets still needed once the IdP has what it needs (G9): the rest are erased in
        the recovery point's transaction. By default none: a password is held only until the
        IdP has it."""
        return {}

    def public_result(self, result: dict[str, Any], secrets: dict[str, Any]) -> dict[str, Any]:
        """The stored result as returned to the caller (secrets added back, where any)."""
        return result


FlowTable = Mapping[OperationKind, Flow]


@dataclass
class Context:
    """Everything a use case needs, built once and passed down."""

    settings: Settings
    store: Store
    idp: IdentityProvider
    sealer: Sealer
    flows: FlowTable
    hooks: Hooks = field(default_factory=Hooks)
    clock: Clock = field(default_factory=SystemClock)
    # Attempt counters (sign-in, public endpoints); None: nothing is throttled (a Context a
    # program builds for itself; bootstrap and fake_context always give one).
    throttle: Throttle | None = None
    # Sends webhook deliveries; None: the worker delivers none (a Context a program builds for
    # itself, the in-memory doubles). bootstrap always gives one.
    webhooks: WebhookTargets | None = None
    # Wakes an idle worker when work falls due; None: the worker polls (``worker_poll_seconds``)
    # and wakes when a retry or a lease it knows of falls due. bootstrap always gives one.
    work_signal: WorkSignal | None = None

    def flow(self, kind: OperationKind) -> Flow:
        """The flow that runs operations of ``kind``."""
        return self.flows[kind]
