"""``InMemoryStore``: the store port in memory, for tests of the services that need no database.

It keeps PostgreSQL's promises that the services rely on: the unique e-mail, slug, personal
owner and (caller, idempotency key) indexes, the foreign keys' cascades, compare-and-set
updates, and transactions that commit whole or not at all. Transactions run one at a time (a
single lock), which is one of the orders PostgreSQL could have chosen: races are proven on the
real store (tests/integration, tests/crash), logic here. ``tests/contracts/test_store.py`` runs
the same cases against both, so the two cannot drift apart.

Not here: the reconcile session (``drift_session``), which stages a listing in a temporary table
and joins it in SQL; reconcile is tested on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from typing_extensions import Unpack

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
from accord.domain.ports import Clock
from accord.domain.records import (
    ApiTokenRecord,
    AuditEvent,
    LinkRecord,
    MemberRecord,
    MembershipRecord,
    NewOperation,
    NewOrganizationRecord,
    OneTimeTokenRecord,
    OperationRecord,
    OrganizationRecord,
    OrganizationSummary,
    OutboxMessage,
    UserRecord,
    UserView,
)
from accord.domain.store import DriftSession, OperationChanges, Row, UserChanges

PLACEHOLDER_NAME = "(held by reconcile)"


@dataclass
class Tables:
    """Everything stored, as the database would hold it."""

    users: dict[UUID, UserRecord] = field(default_factory=dict)
    links: dict[tuple[UUID, str], LinkRecord] = field(default_factory=dict)
    memberships: dict[tuple[UUID, UUID], MembershipRecord] = field(default_factory=dict)
    organizations: dict[UUID, OrganizationRecord] = field(default_factory=dict)
    operations: dict[UUID, OperationRecord] = field(default_factory=dict)
    audit: list[AuditEvent] = field(default_factory=list)
    outbox: dict[int, OutboxMessage] = field(default_factory=dict)
    outbox_due: dict[int, datetime] = field(default_factory=dict)
    tokens: dict[int, OneTimeTokenRecord] = field(default_factory=dict)
    api_tokens: dict[UUID, tuple[str, ApiTokenRecord]] = field(default_factory=dict)


class _Repository:
    def __init__(self, tables: Tables, clock: Clock, ids: itertools.count[int]) -> None:
        self.t = tables
        self.now = clock.now
        self.ids = ids


class MemoryUsers(_Repository):
    async def get(self, user_id: UUID, *, lock: bool = False) -> UserRecord | None:
        return copy.deepcopy(self.t.users.get(user_id))

    async def by_email(self, email: str) -> UserRecord | None:
        return copy.deepcopy(next((u for u in self.t.users.values() if u.email == email), None))

    def _new(self, user_id: UUID, email: str, name: str, status: UserStatus, by: str) -> UUID:
        now = self.now()
        self.t.users[user_id] = UserRecord(
            user_id, email, name, status, False, False, by, 1, now, now
        )
        return user_id

    async def claim(
        self, *, user_id: UUID, email: str, full_name: str, created_by: str
    ) -> UUID | None:
        existing = await self.by_email(email)
        if existing is None:
            return self._new(user_id, email, full_name, UserStatus.PROVISIONING, created_by)
        if existing.status != UserStatus.DISABLED:
            return None
        await self.update(existing.id, status=UserStatus.PROVISIONING, full_name=full_name)
        return existing.id

    async def insert_adopted(self, *, email: str, full_name: str, created_by: str) -> UUID | None:
        if await self.by_email(email) is not None:
            return None
        return self._new(uuid4(), email, full_name, UserStatus.ACTIVE, created_by)

    async def update(self, user_id: UUID, **changes: Unpack[UserChanges]) -> None:
        user = self.t.users.get(user_id)
        if user is not None:
            self.t.users[user_id] = replace(
                user, **changes, version=user.version + 1, updated_at=self.now()
            )

    async def delete(self, user_id: UUID) -> None:
        if self.t.users.pop(user_id, None) is None:
            return
        for key in [k for k in self.t.links if k[0] == user_id]:
            del self.t.links[key]
        for key in [k for k in self.t.memberships if k[0] == user_id]:
            del self.t.memberships[key]
        for key in [k for k, v in self.t.tokens.items() if v.user_id == user_id]:
            del self.t.tokens[key]
        for org in list(self.t.organizations.values()):
            if org.owner_user_id == user_id:
                self.t.organizations[org.id] = replace(org, owner_user_id=None)

    async def view(self, user_id: UUID) -> UserView | None:
        views = await self.list()
        return next((v for v in views if v.user.id == user_id), None)

    async def list(
        self,
        *,
        organization_id: UUID | None = None,
        email: str | None = None,
        after: UUID | None = None,
        limit: int | None = None,
    ) -> list[UserView]:
        found = []
        for user in sorted(self.t.users.values(), key=lambda u: u.id):
            held = tuple(m for (uid, _), m in self.t.memberships.items() if uid == user.id)
            if organization_id is not None and all(
                m.organization_id != organization_id for m in held
            ):
                continue
            if (email is not None and user.email != email) or (after and user.id <= after):
                continue
            found.append(copy.deepcopy(UserView(user, held)))
        return found[:limit] if limit is not None else found

    async def hold_email(self, email: str) -> tuple[bool, UUID | None]:
        existing = await self.by_email(email)
        if existing is not None:
            return existing.status == UserStatus.DISABLED, None
        return True, self._new(uuid4(), email, PLACEHOLDER_NAME, UserStatus.PROVISIONING, "x")

    async def release_email(self, placeholder: UUID | None) -> None:
        if placeholder is not None:
            await self.delete(placeholder)


class MemoryLinks(_Repository):
    async def get(self, user_id: UUID, provider: str) -> LinkRecord | None:
        return self.t.links.get((user_id, provider))

    async def holder(self, provider: str, remote_id: str) -> UUID | None:
        return next(
            (
                link.user_id
                for link in self.t.links.values()
                if (link.provider, link.remote_id) == (provider, remote_id)
            ),
            None,
        )

    async def link(
        self, *, user_id: UUID, provider: str, remote_id: str, created_by_accord: bool
    ) -> None:
        self.t.links.pop((user_id, provider), None)
        holder = await self.holder(provider, remote_id)
        if holder is not None:
            raise errors.ConstraintViolated("uq_idp_links_provider_remote_id")
        self.t.links[(user_id, provider)] = LinkRecord(
            user_id, provider, remote_id, created_by_accord
        )

    async def unlink_all(self, user_id: UUID) -> None:
        for key in [k for k in self.t.links if k[0] == user_id]:
            del self.t.links[key]


class MemoryMemberships(_Repository):
    async def put(
        self, *, user_id: UUID, organization_id: UUID, role: Role, permissions: Sequence[str]
    ) -> None:
        if organization_id not in self.t.organizations:
            raise errors.OrganizationNotFound()
        if user_id not in self.t.users:
            raise errors.ConstraintViolated("fk_memberships_user_id_users")
        record = MembershipRecord(user_id, organization_id, Role(role), tuple(permissions))
        self.t.memberships[(user_id, organization_id)] = record

    async def remove_all(self, user_id: UUID) -> None:
        for key in [k for k in self.t.memberships if k[0] == user_id]:
            del self.t.memberships[key]

    async def organizations_of(self, user_id: UUID) -> list[UUID]:
        return [org for uid, org in self.t.memberships if uid == user_id]

    async def count(self, organization_id: UUID) -> int:
        return sum(1 for _, org in self.t.memberships if org == organization_id)

    async def members(self, organization_id: UUID) -> dict[UUID, MemberRecord]:
        return {
            uid: MemberRecord(m, self.t.users[uid].email)
            for (uid, org), m in self.t.memberships.items()
            if org == organization_id
        }


class MemoryOrganizations(_Repository):
    async def get(self, organization_id: UUID, *, lock: bool = False) -> OrganizationRecord | None:
        return copy.deepcopy(self.t.organizations.get(organization_id))

    async def lock_many(self, ids: Sequence[UUID]) -> dict[UUID, OrganizationRecord]:
        return {i: copy.deepcopy(self.t.organizations[i]) for i in ids if i in self.t.organizations}

    async def by_slug(self, slug: str) -> OrganizationRecord | None:
        found = (o for o in self.t.organizations.values() if o.slug == slug)
        return copy.deepcopy(next(found, None))

    async def personal_of(self, owner_id: UUID) -> OrganizationRecord | None:
        found = (
            o
            for o in self.t.organizations.values()
            if o.owner_user_id == owner_id and o.kind == OrganizationKind.PERSONAL
        )
        return copy.deepcopy(next(found, None))

    async def insert(self, new: NewOrganizationRecord) -> OrganizationRecord | None:
        if not new.max_users >= 1:
            raise errors.InvalidInput()
        taken = await self.by_slug(new.slug) is not None or (
            new.kind == OrganizationKind.PERSONAL
            and new.owner_user_id is not None
            and await self.personal_of(new.owner_user_id) is not None
        )
        if taken:
            return None
        now = self.now()
        record = OrganizationRecord(**asdict(new), version=1, created_at=now, updated_at=now)
        self.t.organizations[new.id] = record
        return copy.deepcopy(record)

    async def update_settings(self, organization_id: UUID, settings: dict[str, Any]) -> None:
        org = self.t.organizations[organization_id]
        self.t.organizations[organization_id] = replace(
            org, settings=dict(settings), version=org.version + 1, updated_at=self.now()
        )

    async def delete(self, organization_id: UUID) -> None:
        self.t.organizations.pop(organization_id, None)
        for key in [k for k in self.t.memberships if k[1] == organization_id]:
            del self.t.memberships[key]
        for key, (_, token) in list(self.t.api_tokens.items()):
            if token.organization_id == organization_id:
                del self.t.api_tokens[key]

    async def summary(self, organization_id: UUID) -> OrganizationSummary | None:
        return next(iter(await self.summaries([organization_id])), None)

    async def summaries(self, ids: Sequence[UUID] | None = None) -> list[OrganizationSummary]:
        wanted = set(ids) if ids is not None else None
        return [
            OrganizationSummary(
                copy.deepcopy(org), sum(1 for _, o in self.t.memberships if o == org.id)
            )
            for org in sorted(self.t.organizations.values(), key=lambda o: o.slug)
            if wanted is None or org.id in wanted
        ]


class MemoryOperations(_Repository):
    async def insert(self, new: NewOperation) -> OperationRecord:
        if new.idempotency_key is not None and await self.find_by_key(
            new.caller, new.idempotency_key
        ):
            raise errors.OperationInProgress()
        now = self.now()
        record = OperationRecord(
            **asdict(new),
            flow_state={},
            user_id=None,
            organization_id=None,
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
        return sum(
            1
            for op in self.t.operations.values()
            if op.organization_id == organization_id
            and op.state == OperationState.OPEN
            and op.kind == OperationKind.CREATE_USER
            and op.recovery_point != RecoveryPoint.COMPENSATING
        )

    async def open_for_user(self, user_id: UUID) -> OperationRecord | None:
        found = (o for o in self._open() if o.user_id == user_id)
        return copy.deepcopy(next(found, None))

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

    async def open_by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self._open():
            counts[op.kind.value] = counts.get(op.kind.value, 0) + 1
        return counts


class MemoryAudit(_Repository):
    async def record(self, event: AuditEvent) -> None:
        self.t.audit.append(copy.deepcopy(event))


class MemoryOutbox(_Repository):
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

    async def delete_unsent(self, recipient: str) -> None:
        for key, message in list(self.t.outbox.items()):
            if message.recipient == recipient and message.sent_at is None:
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

    async def mark_sent(self, message_id: int) -> None:
        if message_id in self.t.outbox:
            self.t.outbox[message_id] = replace(self.t.outbox[message_id], sent_at=self.now())

    async def mark_failed(self, message_id: int, error: str, retry_in: float) -> None:
        self.t.outbox_due[message_id] = self.now() + timedelta(seconds=retry_in)


class MemoryOneTimeTokens(_Repository):
    async def insert(
        self, *, digest: str, user_id: UUID, purpose: TokenPurpose, expires_at: datetime
    ) -> None:
        if user_id not in self.t.users:
            raise errors.ConstraintViolated("fk_one_time_tokens_user_id_users")
        token_id = next(self.ids)
        self.t.tokens[token_id] = OneTimeTokenRecord(
            token_id, digest, user_id, purpose, expires_at, None
        )

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


class MemoryApiTokens(_Repository):
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

    async def live_count(self, organization_id: UUID) -> int:
        return sum(
            1
            for _, r in self.t.api_tokens.values()
            if r.organization_id == organization_id and r.revoked_at is None
        )


class MemoryDriftQueries(_Repository):
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


class MemoryTransaction:
    """Every repository over one working copy of the tables."""

    def __init__(self, tables: Tables, clock: Clock, ids: itertools.count[int]) -> None:
        self.users = MemoryUsers(tables, clock, ids)
        self.links = MemoryLinks(tables, clock, ids)
        self.memberships = MemoryMemberships(tables, clock, ids)
        self.organizations = MemoryOrganizations(tables, clock, ids)
        self.operations = MemoryOperations(tables, clock, ids)
        self.audit = MemoryAudit(tables, clock, ids)
        self.outbox = MemoryOutbox(tables, clock, ids)
        self.one_time_tokens = MemoryOneTimeTokens(tables, clock, ids)
        self.api_tokens = MemoryApiTokens(tables, clock, ids)
        self.drift = MemoryDriftQueries(tables, clock, ids)

    @property
    def connection(self) -> None:
        """There is no connection: a hook that needs one cannot run on this store."""
        return None

    async def try_singleton_lock(self, key: int) -> bool:
        return True  # transactions run one at a time: nobody else can hold it

    async def ping(self) -> None:
        return None


class InMemoryStore:
    """The store port in memory (see the module docstring for what it keeps and what not)."""

    def __init__(self, clock: Clock) -> None:
        self.tables = Tables()
        self._clock = clock
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryTransaction]:
        """Run the block on a copy of the tables; keep the copy only if the block returns."""
        async with self._lock:
            working = copy.deepcopy(self.tables)
            yield MemoryTransaction(working, self._clock, self._ids)
            self.tables = working

    def drift_session(self, provider: str) -> DriftSession:
        raise NotImplementedError("reconcile stages the listing in PostgreSQL: use PgStore")
