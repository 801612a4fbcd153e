"""In-memory operations, audit, outbox, tokens and drift reads (see ``memory_store.py``)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from typing_extensions import Unpack

from accord.domain import errors
from accord.domain.model import (
    OperationKind,
    OperationState,
    RecoveryPoint,
    TokenPurpose,
    TokenScope,
    UserStatus,
)
from accord.domain.records import (
    ApiTokenRecord,
    NewOperation,
    OneTimeTokenRecord,
    OperationRecord,
    OutboxMessage,
)
from accord.domain.store import OperationChanges, Row
from accord.testing.memory_tables import Repository, open_claims


class MemoryOperations(Repository):
    async def insert(self, new: NewOperation) -> OperationRecord:
        if new.idempotency_key is not None and await self.find_by_key(
            new.caller, new.idempotency_key
        ):
            raise errors.OperationInProgress()
        now = self.now()
        record = OperationRecord(
            **asdict(new),
            flow_state={},
            remote_id=None,
            created_remote=None,
            next_attempt_at=None,
            result=None,
            created_at=now,
            updated_at=now,
        )
        self.t.operations[new.id] = record
        return copy.deepcopy(record)

    async def get(self, operation_id: UUID, *, lock: bool = False) -> OperationRecord | None:
        return copy.deepcopy(self.t.operations.get(operation_id))

    async def find_by_key(self, caller: str, key: str) -> OperationRecord | None:
        found = (
            op
            for op in self.t.operations.values()
            if op.caller == caller and op.idempotency_key == key
        )
        return copy.deepcopy(next(found, None))

    def _idle(self, op: OperationRecord) -> bool:
        return op.state == OperationState.OPEN and (
            op.lease_until is None or op.lease_until < self.now()
        )

    def _lease(self, op: OperationRecord, lease_seconds: float) -> OperationRecord:
        now = self.now()
        leased = replace(
            op,
            lease_until=now + timedelta(seconds=lease_seconds),
            attempts=op.attempts + 1,
            updated_at=now,
        )
        self.t.operations[op.id] = leased
        return copy.deepcopy(leased)

    async def take_lease(self, operation_id: UUID, lease_seconds: float) -> OperationRecord | None:
        op = self.t.operations.get(operation_id)
        return self._lease(op, lease_seconds) if op and self._idle(op) else None

    async def advance(
        self,
        operation_id: UUID,
        expected: RecoveryPoint | tuple[RecoveryPoint, ...],
        **changes: Unpack[OperationChanges],
    ) -> OperationRecord | None:
        allowed = (expected,) if isinstance(expected, RecoveryPoint) else expected
        op = self.t.operations.get(operation_id)
        if op is None or op.state != OperationState.OPEN or op.recovery_point not in allowed:
            return None
        values: dict[str, Any] = copy.deepcopy(dict(changes))
        for name, kind in (("state", OperationState), ("recovery_point", RecoveryPoint)):
            if name in values:
                values[name] = kind(values[name])
        moved = replace(op, **values, updated_at=self.now())
        self.t.operations[operation_id] = moved
        return copy.deepcopy(moved)

    async def count_open_claims(self, organization_id: UUID) -> int:
        return open_claims(self.t, organization_id)

    async def open_for_user(self, user_id: UUID) -> OperationRecord | None:
        found = (o for o in self._open() if o.user_id == user_id)
        return copy.deepcopy(next(found, None))

    async def claimed_for(self, user_id: UUID, email: str) -> bool:
        return any(
            op.user_id == user_id
            and op.kind in (OperationKind.CREATE_USER, OperationKind.REGISTER)
            and op.request.get("email") == email
            for op in self.t.operations.values()
        )

    def _open(self) -> list[OperationRecord]:
        return [op for op in self.t.operations.values() if op.state == OperationState.OPEN]

    async def open_touching(self, *, user_id: UUID | str | None, email: str | None) -> UUID | None:
        for op in self._open():
            if user_id is not None and str(op.user_id) == str(user_id):
                return op.id
            if email and email in (op.request.get("email"), op.flow_state.get("email")):
                return op.id
        return None

    async def lease_due(self, *, limit: int, lease_seconds: float) -> list[OperationRecord]:
        now = self.now()
        due = [
            op
            for op in self._open()
            if self._idle(op) and (op.next_attempt_at is None or op.next_attempt_at <= now)
        ]
        due.sort(key=lambda op: (op.next_attempt_at is not None, op.next_attempt_at or now))
        return [self._lease(op, lease_seconds) for op in due[:limit]]

    async def release_lease(self, operation_id: UUID) -> None:
        op = self.t.operations.get(operation_id)
        if op is not None and op.state == OperationState.OPEN:
            self.t.operations[op.id] = replace(op, lease_until=None, attempts=op.attempts - 1)

    async def due_in(self) -> float | None:
        now = self.now()
        times = [max(op.next_attempt_at or now, op.lease_until or now) for op in self._open()]
        return (min(times) - now).total_seconds() if times else None

    async def forget_idempotency(self, older_than_hours: float) -> int:
        limit = self.now() - timedelta(hours=older_than_hours)
        forgotten = 0
        for op in list(self.t.operations.values()):
            if op.state == OperationState.OPEN or op.updated_at >= limit:
                continue
            if op.idempotency_key is not None or op.sealed_secrets is not None:
                self.t.operations[op.id] = replace(op, idempotency_key=None, sealed_secrets=None)
                forgotten += 1
        return forgotten

    async def delete_finished(self, older_than_hours: float, *, limit: int) -> int:
        before = self.now() - timedelta(hours=older_than_hours)
        old = [
            op.id
            for op in self.t.operations.values()
            if op.state != OperationState.OPEN and op.updated_at < before
        ][:limit]
        for op_id in old:
            del self.t.operations[op_id]
        return len(old)

    async def open_by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self._open():
            counts[op.kind.value] = counts.get(op.kind.value, 0) + 1
        return counts


class MemoryOutbox(Repository):
    async def enqueue(
        self, *, kind: str, dedupe_key: str, recipient: str, payload: dict[str, Any]
    ) -> None:
        if any(m.dedupe_key == dedupe_key for m in self.t.outbox.values()):
            return
        message_id = next(self.ids)
        self.t.outbox[message_id] = OutboxMessage(
            message_id, kind, dedupe_key, recipient, copy.deepcopy(payload), 0
        )
        self.t.outbox_due[message_id] = self.now()

    async def delete_unsent(self, recipient: str, *, kinds: Sequence[str] | None = None) -> None:
        for key, message in list(self.t.outbox.items()):
            unsent = message.recipient == recipient and message.sent_at is None
            if unsent and (kinds is None or message.kind in kinds):
                del self.t.outbox[key]

    async def lease_due(self, *, limit: int, lease_seconds: float) -> list[OutboxMessage]:
        now = self.now()
        due = sorted(
            (m for m in self.t.outbox.values() if m.sent_at is None),
            key=lambda m: self.t.outbox_due[m.id],
        )
        leased = []
        for message in [m for m in due if self.t.outbox_due[m.id] <= now][:limit]:
            taken = replace(message, attempts=message.attempts + 1)
            self.t.outbox[message.id] = taken
            self.t.outbox_due[message.id] = now + timedelta(seconds=lease_seconds)
            leased.append(copy.deepcopy(taken))
        return leased

    async def due_in(self) -> float | None:
        unsent = [self.t.outbox_due[m.id] for m in self.t.outbox.values() if m.sent_at is None]
        return (min(unsent) - self.now()).total_seconds() if unsent else None

    async def mark_sent(self, message_id: int) -> None:
        if message_id in self.t.outbox:
            self.t.outbox[message_id] = replace(self.t.outbox[message_id], sent_at=self.now())

    async def mark_failed(self, message_id: int, error: str, retry_in: float) -> None:
        self.t.outbox_due[message_id] = self.now() + timedelta(seconds=retry_in)


class MemoryOneTimeTokens(Repository):
    async def insert(
        self, *, digest: str, user_id: UUID, purpose: TokenPurpose, expires_at: datetime
    ) -> None:
        if user_id not in self.t.users:
            raise errors.ConstraintViolated("fk_one_time_tokens_user_id_users")
        token_id = next(self.ids)
        self.t.tokens[token_id] = OneTimeTokenRecord(
            token_id, digest, user_id, purpose, expires_at, None
        )

    async def insert_if_live(
        self, *, digest: str, user_id: UUID, purpose: TokenPurpose, expires_at: datetime
    ) -> bool:
        user = self.t.users.get(user_id)
        if user is None or not user.is_live:
            return False
        await self.insert(digest=digest, user_id=user_id, purpose=purpose, expires_at=expires_at)
        return True

    async def find_live(self, digest: str) -> OneTimeTokenRecord | None:
        now = self.now()
        found = (
            t
            for t in self.t.tokens.values()
            if t.digest == digest and t.used_at is None and t.expires_at > now
        )
        return next(found, None)

    async def consume(self, token_id: int) -> bool:
        token = self.t.tokens.get(token_id)
        if token is None or token.used_at is not None:
            return False
        self.t.tokens[token_id] = replace(token, used_at=self.now())
        return True

    async def release(self, token_id: int) -> None:
        if token_id in self.t.tokens:
            self.t.tokens[token_id] = replace(self.t.tokens[token_id], used_at=None)

    async def delete_for_user(self, user_id: UUID) -> None:
        for key in [k for k, t in self.t.tokens.items() if t.user_id == user_id]:
            del self.t.tokens[key]

    async def expire(self) -> int:
        now = self.now()
        gone = [
            k
            for k, t in self.t.tokens.items()
            if t.expires_at < now or (t.used_at is not None and t.used_at < now - timedelta(1))
        ]
        for key in gone:
            del self.t.tokens[key]
        return len(gone)


class MemoryApiTokens(Repository):
    async def insert(
        self,
        *,
        token_id: UUID,
        digest: str,
        name: str,
        scope: TokenScope,
        organization_id: UUID | None,
    ) -> ApiTokenRecord:
        if organization_id is not None and organization_id not in self.t.organizations:
            raise errors.OrganizationNotFound()
        record = ApiTokenRecord(token_id, name, scope, organization_id, self.now(), None)
        self.t.api_tokens[token_id] = (digest, record)
        return record

    async def live(self, digest: str) -> ApiTokenRecord | None:
        found = (r for d, r in self.t.api_tokens.values() if d == digest and r.revoked_at is None)
        return next(found, None)

    async def revoke(self, token_id: UUID) -> bool:
        if token_id not in self.t.api_tokens:
            return False
        digest, record = self.t.api_tokens[token_id]
        if record.revoked_at is None:
            self.t.api_tokens[token_id] = (digest, replace(record, revoked_at=self.now()))
        return True

    async def get(self, token_id: UUID) -> ApiTokenRecord | None:
        stored = self.t.api_tokens.get(token_id)
        return stored[1] if stored else None

    async def list_for(self, organization_id: UUID, scope: TokenScope) -> list[ApiTokenRecord]:
        found = [
            r
            for _, r in self.t.api_tokens.values()
            if r.organization_id == organization_id and r.scope == scope
        ]
        return sorted(found, key=lambda r: (r.created_at, r.id))

    async def live_count(self, organization_id: UUID) -> int:
        return sum(
            1
            for _, r in self.t.api_tokens.values()
            if r.organization_id == organization_id and r.revoked_at is None
        )


class MemoryDriftQueries(Repository):
    async def count_stuck(self, grace_seconds: float) -> int:
        now = self.now()
        return sum(
            1
            for op in self.t.operations.values()
            if op.state == OperationState.OPEN
            and (
                op.deadline_at < now
                or (
                    (op.lease_until is None or op.lease_until < now)
                    and (op.next_attempt_at or op.updated_at)
                    < now - timedelta(seconds=grace_seconds)
                )
            )
        )

    async def sample_rows(self, provider: str, limit: int) -> list[Row]:
        live = [u for u in self.t.users.values() if u.status != UserStatus.DISABLED]
        live.sort(key=lambda u: u.created_at, reverse=True)
        busy = {op.user_id for op in self.t.operations.values() if op.state == "open"}
        rows: list[Row] = []
        for user in live[:limit]:
            link = self.t.links.get((user.id, provider))
            rows.append(
                {
                    "user_id": str(user.id),
                    "email": user.email,
                    "status": user.status.value,
                    "remote_id": link.remote_id if link else None,
                    "busy": user.id in busy,
                }
            )
        return rows

    async def unlinked_of(
        self, provider: str, remote_ids: Sequence[str], emails: Sequence[str]
    ) -> list[Row]:
        linked = {link.remote_id for link in self.t.links.values() if link.provider == provider}
        busy = {op.request.get("email") for op in self.t.operations.values() if op.state == "open"}
        live = {u.email for u in self.t.users.values() if u.status != UserStatus.DISABLED}
        return [
            {"remote_id": rid, "email_key": key, "has_row": key in live}
            for rid, key in zip(remote_ids, emails, strict=True)
            if rid not in linked and key not in busy
        ]
