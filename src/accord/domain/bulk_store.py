"""The store port's repository for set-wise user creation (``accord import``, issue 12).

It writes, many rows to a statement, exactly the rows and states the per-row engine
(services/provisioning.py ``CreateUser``) writes at the same recovery point: a batch that stops
between two of its transactions leaves ordinary open operations, which the worker or a rerun
(same idempotency keys) finishes one by one through the ordinary flow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from accord.domain.model import Role, UserStatus
from accord.domain.records import NewOperation, OperationRecord, UserView


@dataclass(frozen=True)
class BulkClaim:
    """One create's claim: its operation (open at ``claimed``) and its user row
    (``provisioning``), as ``CreateUser.claim`` would have left them."""

    operation: NewOperation
    user_id: UUID
    organization_id: UUID
    email: str
    full_name: str
    created_by: str


@dataclass(frozen=True)
class BulkEnsured:
    """The IdP's answer for one claimed create: the recovery point ``idp_ensured``."""

    operation_id: UUID
    remote_id: str
    created_remote: bool
    flow_state: dict[str, Any]


@dataclass(frozen=True)
class BulkFinish:
    """What one create's finalize writes: link, user, membership, invitation mail, answer."""

    operation: OperationRecord
    provider: str
    created_by_accord: bool
    status: UserStatus
    role: Role
    permissions: tuple[str, ...]
    result: dict[str, Any]
    invitation: dict[str, Any] | None  # the outbox row (kind, dedupe_key, recipient, payload)


@dataclass(frozen=True)
class KnownKey:
    """An operation an idempotency key started already."""

    id: UUID
    state: str
    request_digest: str
    result: dict[str, Any] | None


@runtime_checkable
class BulkCreates(Protocol):
    """Set-wise user creation; every method is one or a few statements for the whole batch."""

    async def known(self, caller: str, keys: Sequence[str]) -> dict[str, KnownKey]:
        """The operations these keys of ``caller`` started already, by key."""
        ...

    async def taken_emails(self, emails: Sequence[str]) -> set[str]:
        """Those of ``emails`` that a user row holds."""
        ...

    async def claim(self, claims: Sequence[BulkClaim]) -> set[UUID]:
        """Insert the user rows, then the operations; the ids of the operations claimed.

        A claim whose e-mail or key another writer took meanwhile is left out whole (nothing
        of it is written): the unique indexes settle the race, as for one claim."""
        ...

    async def unclaim(self, operation_ids: Sequence[UUID]) -> None:
        """Take back claims made in this transaction (their operations and user rows)."""
        ...

    async def release(self, operation_ids: Sequence[UUID]) -> None:
        """Give the leases of these open operations back (the per-row path takes them)."""
        ...

    async def ensured(self, answers: Sequence[BulkEnsured]) -> list[OperationRecord]:
        """Move the operations from ``claimed`` to ``idp_ensured`` (compare-and-set): the
        operations moved, as they are now."""
        ...

    async def holders(self, provider: str, remote_ids: Sequence[str]) -> dict[str, UUID]:
        """The users that hold a link to these identities of ``provider``, by identity."""
        ...

    async def lock_ensured(self, ensured: Sequence[OperationRecord]) -> list[OperationRecord]:
        """Lock those of the operations ``ensured`` answered that are still open at
        ``idp_ensured`` (finalize's lock), in lock order; as ``ensured`` answered them (what
        finalize reads of one does not change while it stays there)."""
        ...

    async def link_and_join(self, items: Sequence[BulkFinish]) -> None:
        """The links, user rows and memberships of finalize, for every item."""
        ...

    async def views(self, user_ids: Sequence[UUID]) -> list[UserView]:
        """The users with these ids and their memberships (in this order)."""
        ...

    async def finish(self, items: Sequence[BulkFinish]) -> None:
        """Queue the invitation mails and mark the operations succeeded with their answers."""
        ...


@runtime_checkable
class SetWise(Protocol):
    """A transaction that offers set-wise creation (PostgreSQL's does)."""

    bulk: BulkCreates
