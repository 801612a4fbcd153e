"""The store port: everything the services keep, behind one unit of work.

``Store.transaction()`` opens a ``Transaction``: committed when the block returns, rolled back
when it raises. A transaction exposes one repository per aggregate; each method is one
statement or a few, named for what it does (the SQL behind it lives in ``adapters/db`` under
the same name; the in-memory twin is ``accord.testing.InMemoryStore``). No method ever calls
the IdP: transactions are never held across one.

Error contract, for every method: a unique or check constraint that the domain cares about
raises the matching domain error (``EmailAlreadyExists``, ``OperationInProgress`` for a reused
idempotency key, ...); an unreachable database raises ``StorageUnavailable``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol, TypedDict
from uuid import UUID

from typing_extensions import Unpack

from accord.domain.invitation_store import Invitations
from accord.domain.model import RecoveryPoint, Role, TokenPurpose, TokenScope, UserStatus
from accord.domain.records import (
    ApiTokenRecord,
    AuditEntry,
    AuditEvent,
    AuditQuery,
    ChangeEvent,
    FeedQuery,
    LinkRecord,
    MailRecord,
    MemberRecord,
    MembershipRecord,
    NewEvent,
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
from accord.domain.scim_store import ScimGroups, ScimUsers
from accord.domain.verification_store import Verifications
from accord.domain.webhooks import WebhookStore

Row = Mapping[str, Any]


class OperationChanges(TypedDict, total=False):
    """The columns an operation's transition may set (services/operations.py)."""

    recovery_point: RecoveryPoint
    state: str
    user_id: UUID | None
    organization_id: UUID | None
    remote_id: str | None
    created_remote: bool | None
    flow_state: dict[str, Any]
    sealed_secrets: bytes | None
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    lease_until: datetime | None
    next_attempt_at: datetime | None


class UserChanges(TypedDict, total=False):
    """The columns of a user that a change may set (version and updated_at follow)."""

    status: UserStatus
    full_name: str
    require_password_change: bool
    email: str  # a committed e-mail change (services/profile.py); the address must be free
    is_platform_admin: bool


class OrganizationChanges(TypedDict, total=False):
    """The columns of an organization that an update may set (version and updated_at follow)."""

    display_name: str
    max_users: int
    status: str


class Users(Protocol):
    async def get(self, user_id: UUID, *, lock: bool = False) -> UserRecord | None:
        """The row (locked ``FOR UPDATE`` when asked), if any."""
        ...

    async def by_email(self, email: str) -> UserRecord | None:
        """The row with this normalized e-mail, if any."""
        ...

    async def claim(
        self, *, user_id: UUID, email: str, full_name: str, created_by: str
    ) -> UUID | None:
        """Insert a ``provisioning`` row with this id and e-mail.

        The row's id, or None when a row has the e-mail (a deprovisioned row has none: it is
        never reclaimed). The unique e-mail index is the lock: of concurrent claims for one
        e-mail, exactly one gets a row.
        """
        ...

    async def retire(self, user_id: UUID) -> None:
        """Deprovision the row: ``disabled``, its e-mail moved to ``former_email`` and freed
        (a later user of the address is a new person). Idempotent."""
        ...

    async def insert_adopted(self, *, email: str, full_name: str, created_by: str) -> UUID | None:
        """A new ``active`` row for an IdP user being adopted; None if the e-mail has a row."""
        ...

    async def update(self, user_id: UUID, **changes: Unpack[UserChanges]) -> None:
        """Change the given columns; the version grows by one."""
        ...

    async def update_view(self, user_id: UUID, **changes: Unpack[UserChanges]) -> UserView | None:
        """``update``, then ``view``, in one round trip: the user as changed, with its
        memberships (those this transaction has put included); None if there is no such user."""
        ...

    async def delete(self, user_id: UUID) -> None: ...

    async def view(self, user_id: UUID) -> UserView | None:
        """The user with its memberships."""
        ...

    async def list(
        self,
        *,
        organization_id: UUID | None = None,
        email: str | None = None,
        after: UUID | None = None,
        limit: int | None = None,
    ) -> list[UserView]:
        """Users ordered by id, after ``after``, optionally only one organization's members."""
        ...

    async def hold_email(self, email: str) -> tuple[bool, UUID | None]:
        """Make claims for ``email`` wait until this transaction ends.

        Returns (held, placeholder): held is False when a row has the e-mail; otherwise a
        placeholder row takes the unique index, to be removed with ``release_email`` before
        commit.
        """
        ...

    async def release_email(self, placeholder: UUID | None) -> None: ...

    async def reserve_email(self, email: str, *, created_by: str) -> UUID | None:
        """Reserve ``email`` for an e-mail change: a ``provisioning`` placeholder row takes the
        unique index until the change commits or compensates (then it is deleted). Its id, or
        None when a row has the address. Of a reservation and a claim racing for one address,
        exactly one gets it."""
        ...


# What ``Links.link`` raises (as ConstraintViolated) for an identity another user holds: the
# name of the unique index that lets one user at most hold an identity.
LINKED_ELSEWHERE = "uq_idp_links_provider_remote_id"


class Links(Protocol):
    async def get(self, user_id: UUID, provider: str) -> LinkRecord | None: ...

    async def holder(self, provider: str, remote_id: str) -> UUID | None:
        """The user linked to this identity, if any."""
        ...

    async def link(
        self, *, user_id: UUID, provider: str, remote_id: str, created_by_accord: bool
    ) -> None:
        """Link the user (replacing an older link of the same provider); ConstraintViolated
        if another user holds this identity (``link_unless_held`` names that user instead)."""
        ...

    async def link_unless_held(
        self, *, user_id: UUID, provider: str, remote_id: str, created_by_accord: bool
    ) -> UUID | None:
        """``link``, unless another user holds this identity: then nothing is written and
        that user is returned (``holder`` and ``link`` in one step)."""
        ...

    async def unlink_all(self, user_id: UUID) -> None: ...


class Memberships(Protocol):
    async def put(
        self, *, user_id: UUID, organization_id: UUID, role: Role, permissions: Sequence[str]
    ) -> None:
        """Add the membership, or replace its role and permissions."""
        ...

    async def remove_all(self, user_id: UUID) -> None: ...

    async def remove(self, user_id: UUID, organization_id: UUID) -> bool:
        """Remove this one membership; False if there was none."""
        ...

    async def organizations_of(self, user_id: UUID) -> list[UUID]: ...

    async def count(self, organization_id: UUID) -> int: ...

    async def lock_leavers(self, organization_id: UUID) -> list[UUID]:
        """Lock the user rows of the organization's members (in id order), then return, in id
        order, those with no membership in another organization: the people who would leave
        with it. While the locks are held no membership can be added to them."""
        ...

    async def members(self, organization_id: UUID) -> dict[UUID, MemberRecord]:
        """The organization's memberships by user id, with each member's e-mail."""
        ...

    async def get(self, user_id: UUID, organization_id: UUID) -> MembershipRecord | None:
        """This one membership, if any."""
        ...

    async def page(
        self, organization_id: UUID, *, after: UUID | None = None, limit: int = 50
    ) -> list[MemberRecord]:
        """Up to ``limit`` of the organization's memberships, ordered by user id, after
        ``after``, each with the member's e-mail."""
        ...

    async def count_admins(self, organization_id: UUID) -> int:
        """How many members are ``org_admin`` (count under the organization lock)."""
        ...


class Organizations(Protocol):
    async def get(
        self, organization_id: UUID, *, lock: bool = False
    ) -> OrganizationRecord | None: ...

    async def lock_many(self, ids: Sequence[UUID]) -> dict[UUID, OrganizationRecord]:
        """Lock these organizations in id order (two lockers never deadlock)."""
        ...

    async def lock_seats(self, organization_id: UUID) -> tuple[OrganizationRecord, int] | None:
        """Lock the organization against other seat claims until this transaction ends (not
        against finalizes), and count its seats taken (members plus open claims) as they are
        once the lock is held (G5)."""
        ...

    async def keep(self, organization_id: UUID) -> OrganizationRecord | None:
        """The organization, kept from deletion until this transaction ends, without holding
        up other creates into it."""
        ...

    async def by_slug(self, slug: str) -> OrganizationRecord | None: ...

    async def personal_of(self, owner_id: UUID) -> OrganizationRecord | None: ...

    async def insert(self, new: NewOrganizationRecord) -> OrganizationRecord | None:
        """Insert; None if the slug (or, for a personal one, its owner) is taken."""
        ...

    async def update_settings(self, organization_id: UUID, settings: dict[str, Any]) -> None: ...

    async def update(
        self, organization_id: UUID, **changes: Unpack[OrganizationChanges]
    ) -> OrganizationRecord | None:
        """Change the given columns; the version grows by one. The row after, or None."""
        ...

    async def delete(self, organization_id: UUID) -> None:
        """Remove it; its memberships and API tokens go with it."""
        ...

    async def summary(self, organization_id: UUID) -> OrganizationSummary | None: ...

    async def summaries(self, ids: Sequence[UUID] | None = None) -> list[OrganizationSummary]:
        """Every organization (or these), ordered by slug, with member counts."""
        ...


class Operations(Protocol):
    async def insert(self, new: NewOperation) -> OperationRecord:
        """Insert; OperationInProgress if the caller used this idempotency key already."""
        ...

    async def get(self, operation_id: UUID, *, lock: bool = False) -> OperationRecord | None: ...

    async def find_by_key(self, caller: str, key: str) -> OperationRecord | None: ...

    async def take_lease(self, operation_id: UUID, lease_seconds: float) -> OperationRecord | None:
        """Lease an open operation that nobody runs; None if leased or finished."""
        ...

    async def advance(
        self,
        operation_id: UUID,
        expected: RecoveryPoint | tuple[RecoveryPoint, ...],
        **changes: Unpack[OperationChanges],
    ) -> OperationRecord | None:
        """Move an open operation on from ``expected``; None if another runner moved it."""
        ...

    async def count_open_claims(self, organization_id: UUID) -> int:
        """Open operations that will add a member to the organization (G5 counts them)."""
        ...

    async def open_for_user(self, user_id: UUID) -> OperationRecord | None: ...

    async def claimed_for(self, user_id: UUID, email: str) -> bool:
        """Whether an operation (in any state) claimed this user id for this e-mail: then an
        identity stamped with the id is one accord made for the address."""
        ...

    async def open_touching(self, *, user_id: UUID | str | None, email: str | None) -> UUID | None:
        """An open operation whose subject is this user or this e-mail, if any."""
        ...

    async def lease_due(self, *, limit: int, lease_seconds: float) -> list[OperationRecord]:
        """Lease up to ``limit`` open operations whose retry time has come (SKIP LOCKED)."""
        ...

    async def release_lease(self, operation_id: UUID) -> None: ...

    async def due_in(self) -> float | None:
        """Seconds until the next open operation falls due (its retry time come, its lease
        run out; 0 or less: due now); None if none is open. A worker sleeps that long."""
        ...

    async def forget_idempotency(self, older_than_hours: float) -> int:
        """Finished operations past their lifetime stop answering for their key."""
        ...

    async def delete_finished(self, older_than_hours: float, *, limit: int) -> int:
        """Delete up to ``limit`` finished operations (succeeded, failed, refused) last changed
        more than ``older_than_hours`` ago; return how many. Open ones are never deleted."""
        ...

    async def open_by_kind(self) -> dict[str, int]: ...


class AuditLog(Protocol):
    async def record(self, event: AuditEvent, *, current: Mapping[str, Any] | None = None) -> None:
        """Record the event. ``current``: the subject's document as the API shows it now, when
        the caller has just read it after the change (the change feed takes it instead of
        reading the subject again, ``domain/changes.py``); the audit log itself ignores it."""
        ...

    async def record_many(
        self,
        events: Sequence[AuditEvent],
        *,
        current: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Record many events in one statement, as ``record`` would one by one; ``current``:
        each event's document, in the same order (set-wise creation)."""
        ...

    async def query(self, query: AuditQuery) -> list[AuditEntry]:
        """Up to ``query.limit`` entries matching every filter, in (at, id) order, after
        ``query.after``. Never raises for filters that match nothing."""
        ...

    async def delete_older_than(self, days: float, *, limit: int) -> int:
        """Delete up to ``limit`` events recorded more than ``days`` ago; return how many."""
        ...


class ChangeFeed(Protocol):
    """The change feed (``domain/changes.py`` writes it, ``adapters/db/events.py`` explains
    how it stays gap-free). Writers append events without a position; ``assign`` gives the
    committed ones their positions after commit; readers page through assigned positions."""

    async def append(self, events: Sequence[NewEvent]) -> None:
        """Write the events (of different subjects), without a feed position yet: each
        subject's version grows by one (the first is 1) and its event carries it, with the
        top-level fields of ``data`` that differ from the previous version's (sorted;
        ``updated_at`` and ``version`` never count) and its operation's idempotency key. The
        subjects stay locked until this transaction ends: a next writer waits, so versions
        commit in order."""
        ...

    async def assign(self, *, limit: int) -> int | None:
        """Give up to ``limit`` committed, unassigned events the next positions, in the order
        they were written; how many. None if another assigner is at work (then do nothing)."""
        ...

    async def page(self, query: FeedQuery) -> list[ChangeEvent]:
        """Up to ``query.limit`` assigned events after position ``query.after``, in position
        order, of the given types (any if empty) and visible to the organization (any if
        None)."""
        ...

    async def horizon(self) -> int:
        """The last position retention deleted (0: none): a cursor below it has missed events."""
        ...

    async def delete_older_than(self, days: float, *, limit: int) -> int:
        """Delete up to ``limit`` assigned events, oldest first, that occurred more than
        ``days`` ago; return how many (the horizon moves past them)."""
        ...


class Outbox(Protocol):
    async def enqueue(
        self, *, kind: str, dedupe_key: str, recipient: str, payload: dict[str, Any]
    ) -> None:
        """Queue a message for after commit; a second one with the same key is dropped."""
        ...

    async def delete_unsent(self, recipient: str, *, kinds: Sequence[str] | None = None) -> None:
        """Drop the unsent messages to ``recipient`` (only those of ``kinds``, if given)."""
        ...

    async def lease_due(self, *, limit: int, lease_seconds: float) -> list[OutboxMessage]:
        """Take up to ``limit`` unsent messages that are due, hidden from other workers for
        ``lease_seconds`` (a worker that dies mid-send leaves them to be sent again)."""
        ...

    async def mark_sent(self, message_id: int) -> None: ...

    async def mark_failed(self, message_id: int, error: str, retry_in: float) -> None: ...

    async def due_in(self) -> float | None:
        """Seconds until the next unsent message falls due (0 or less: due now); None if
        every message is sent."""
        ...


class OneTimeTokens(Protocol):
    async def insert(
        self, *, digest: str, user_id: UUID, purpose: TokenPurpose, expires_at: datetime
    ) -> None: ...

    async def insert_if_live(
        self, *, digest: str, user_id: UUID, purpose: TokenPurpose, expires_at: datetime
    ) -> bool:
        """``insert``, if the user may sign in (pending or active); False, and nothing written,
        if not (suspended, deprovisioned, gone): the look-up and the insert in one round trip."""
        ...

    async def find_live(self, digest: str) -> OneTimeTokenRecord | None:
        """The unused, unexpired token with this digest."""
        ...

    async def consume(self, token_id: int) -> bool:
        """Mark it used; False if it was used already (exactly one caller gets True)."""
        ...

    async def release(self, token_id: int) -> None:
        """Make a used token usable again: its effect failed before it happened."""
        ...

    async def delete_for_user(self, user_id: UUID) -> None: ...

    async def expire(self) -> int:
        """Delete tokens that can no longer be used (expired, or used a day ago)."""
        ...


class ApiTokens(Protocol):
    async def insert(
        self,
        *,
        token_id: UUID,
        digest: str,
        name: str,
        scope: TokenScope,
        organization_id: UUID | None,
    ) -> ApiTokenRecord: ...

    async def live(self, digest: str) -> ApiTokenRecord | None:
        """The unrevoked token stored under ``digest``."""
        ...

    async def revoke(self, token_id: UUID) -> bool:
        """Revoke it (once); False if there is no such token."""
        ...

    async def live_count(self, organization_id: UUID) -> int: ...

    async def get(self, token_id: UUID) -> ApiTokenRecord | None: ...

    async def list_for(self, organization_id: UUID, scope: TokenScope) -> list[ApiTokenRecord]:
        """The organization's tokens of ``scope``, revoked ones included, oldest first."""
        ...


class Mailbox(Protocol):
    """The embedded mailbox: where mail goes when no SMTP server is configured."""

    async def deliver(self, *, recipient: str, subject: str, body: str) -> int:
        """Keep a message; its id."""
        ...

    async def list(
        self, *, recipient: str | None = None, before: int | None = None, limit: int = 50
    ) -> list[MailRecord]:
        """Up to ``limit`` messages (to ``recipient`` only, if given), newest first, with ids
        below ``before``."""
        ...

    async def get(self, message_id: int) -> MailRecord | None: ...

    async def delete_older_than(self, days: float, *, limit: int) -> int:
        """Delete up to ``limit`` messages kept more than ``days``; return how many."""
        ...


class DriftQueries(Protocol):
    """Bounded reads for ``accord doctor``'s drift sample."""

    async def count_stuck(self, grace_seconds: float) -> int: ...

    async def sample_rows(self, provider: str, limit: int) -> list[Row]:
        """The newest live rows: user_id, email, status, remote_id, busy."""
        ...

    async def unlinked_of(
        self, provider: str, remote_ids: Sequence[str], emails: Sequence[str]
    ) -> list[Row]:
        """Of these IdP users, the ones no row links to: remote_id, email_key, has_row."""
        ...


class Transaction(Protocol):
    """One unit of work: every repository on one database transaction."""

    users: Users
    links: Links
    memberships: Memberships
    organizations: Organizations
    operations: Operations
    audit: AuditLog  # records the change's feed event too (domain/changes.py)
    events: ChangeFeed
    webhooks: WebhookStore
    outbox: Outbox
    one_time_tokens: OneTimeTokens
    api_tokens: ApiTokens
    drift: DriftQueries
    verifications: Verifications
    invitations: Invitations
    mailbox: Mailbox
    scim_users: ScimUsers
    scim_groups: ScimGroups

    @property
    def connection(self) -> Any:
        """The transaction's own connection, for extension hooks (the application's tables)."""
        ...

    async def try_singleton_lock(self, key: int) -> bool:
        """Take a lock held until this transaction ends; False if another holds it."""
        ...

    async def ping(self) -> None:
        """Prove the store answers."""
        ...


class DriftSession(Protocol):
    """A session held for a whole reconcile: its lock, the staged IdP listing, its joins.

    Rows come back in bounded batches, whatever the number of users.
    """

    async def try_lock(self) -> bool:
        """Take the provider's reconcile lock; False if another session holds it."""
        ...

    async def close(self) -> None: ...

    async def create_staging(self) -> None: ...

    async def stage(self, rows: Sequence[tuple[str | None, ...]]) -> None:
        """Append (remote_id, email, email_key, accord_user_id, enabled) rows to the listing
        (``enabled``: 'true' or 'false')."""
        ...

    async def index_staging(self) -> None: ...

    def rows_with_drift(self) -> AsyncIterator[Row]: ...

    def unlinked_idp_users(self) -> AsyncIterator[Row]: ...

    def stuck_operations(self, grace_seconds: float) -> AsyncIterator[Row]: ...

    def duplicate_organizations(self) -> AsyncIterator[Row]: ...

    def unfinished_rows(self, email: str | None) -> AsyncIterator[Row]: ...


class Store(Protocol):
    """accord's database, seen by the services."""

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A unit of work: committed if the block returns, rolled back if it raises."""
        ...

    def statement(self) -> AbstractAsyncContextManager[Transaction]:
        """A unit of work of one repository call that runs one statement (a look-up, a
        compare-and-set), atomic by itself and cheaper than ``transaction``. A block that
        makes two calls gets no atomicity between them: use ``transaction``."""
        ...

    def drift_session(self, provider: str) -> DriftSession:
        """A dedicated session for reconciling ``provider``."""
        ...
