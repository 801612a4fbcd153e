"""Change events: every committed change writes its feed event in the change's own transaction.

The one place is ``ChangeRecorder``, which *is* the transaction's audit log (``tx.audit``): every
flow already records an audit event for each change it commits, in that change's transaction,
and a failed or compensated operation records only ``*.refused`` / ``*.compensated``, which
map to no change. So recording a change's audit event appends its feed event too; a change
without its event cannot commit, and an event without its change cannot either (both roll
back together).

An audit action maps to a feed type (``FEED_TYPES``); for each event the recorder

- takes the subject's current document (the JSON the API answers for it, ``documents.py``):
  the one the flow passes as ``current`` when it has just read it for its own answer, else
  read in the same transaction, after the change (flows record their audit event after the
  change);
- appends the event, with the operation that caused it; the store adds the operation's
  idempotency key, grows the subject's version by one (an upsert whose row lock also orders
  two writers of one subject, so versions commit in order) and diffs the document against
  the previous version's for the changed fields (``changed_fields``), all in one statement.

A user's creation and an accepted invitation also put a membership in place: the recorder adds
the ``membership.added`` that the flow did not record itself (once per transaction and subject;
a new user's membership document is the one inside the user's). A change's events go to the
store together, in one round trip.

What the feed costs the create path: ``bench/event_overhead.py``.
How the feed is then read in order and without gaps: ``adapters/db/events.py``.

One flow still changes a user row in its claim and audits it in its finalize (a later
transaction of the same durable operation): a suspension (the row is ``suspended`` at once,
``user.suspended`` follows at finalize; a compensated one restores the row and writes none, so
whatever the operation's end, the feed ends with the row). Any other flow that changes a row
in its claim announces it there: a later step can fail, and the change stays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from accord.domain.documents import invitation_json, membership_json, organization_json, user_json
from accord.domain.records import AuditEntry, AuditEvent, AuditQuery, NewEvent

if TYPE_CHECKING:
    from accord.domain.store import AuditLog, Transaction

USER, ORGANIZATION, MEMBERSHIP, INVITATION = "user", "organization", "membership", "invitation"

# Audit action → feed type. Actions not named here (operations started, refused, compensated,
# repeated requests, tokens, mail re-sends) change no subject and write no feed event.
FEED_TYPES: dict[str, str] = {
    "user.created": "user.created",
    "user.registered": "user.created",
    "user.updated": "user.updated",
    "user.email_changed": "user.email_changed",
    "user.suspended": "user.suspended",
    "user.reactivated": "user.reactivated",
    "user.deprovisioned": "user.deprovisioned",
    "membership.added": "membership.added",
    "membership.updated": "membership.updated",
    "membership.removed": "membership.removed",
    "invitation.created": "invitation.created",
    "invitation.accepted": "invitation.accepted",
    "invitation.revoked": "invitation.revoked",
    "invitation.expired": "invitation.expired",
    "organization.created": "organization.created",
    "organization.updated": "organization.updated",
    "organization.merged": "organization.updated",  # the members it took in: membership.added
    "organization.deleted": "organization.deleted",
    # Drift repairs (services/repairs.py, services/cleanup.py): the user's row was repaired.
    "reconcile.linked": "user.repaired",
    "reconcile.row_deprovisioned": "user.repaired",
    "reconcile.row_removed": "user.repaired",
    "reconcile.identity_recreated": "user.repaired",
    "reconcile.identity_adopted": "user.repaired",
    "user.orphan_removed": "user.repaired",
}

EVENT_TYPES: tuple[str, ...] = tuple(sorted(set(FEED_TYPES.values())))

# Fields that change with every write and say nothing of their own.
NOT_CHANGES = ("updated_at", "version")


def subject_type_of(event_type: str) -> str:
    """``user``, ``organization``, ``membership`` or ``invitation``."""
    return event_type.split(".", 1)[0]


def jsonable(value: Any) -> Any:
    """A document with its ids and timestamps as text (what JSONB keeps)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _doc(document: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = jsonable(document)
    return converted


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any] | None) -> tuple[str, ...]:
    """The top-level fields that differ, sorted (every field of a new subject, none of a gone
    one)."""
    if after is None:
        return ()
    before = before or {}
    differ = (
        k for k in after if k not in NOT_CHANGES and (k not in before or before[k] != after[k])
    )
    return tuple(sorted(differ))


@dataclass(frozen=True)
class _Subject:
    type: str
    id: str
    user_id: UUID | None
    organization_id: UUID | None
    invitation_id: UUID | None


class ChangeRecorder:
    """The transaction's audit log: records the audit event and appends its feed event."""

    def __init__(self, audit: AuditLog, tx: Transaction) -> None:
        self._audit = audit
        self._tx = tx
        self._written: set[tuple[str, str]] = set()

    async def record(self, event: AuditEvent, *, current: Mapping[str, Any] | None = None) -> None:
        await self._audit.record(event)
        found = await self._feed(event, current)
        if found:
            await self._tx.events.append(found)  # one round trip for the change's events

    async def record_many(
        self,
        events: Sequence[AuditEvent],
        *,
        current: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """``record`` for each event, in order: one audit statement and one feed append."""
        documents = list(current) if current is not None else [None] * len(events)
        await self._audit.record_many(events)
        found: list[NewEvent] = []
        for event, document in zip(events, documents, strict=True):
            found += await self._feed(event, document)
        if found:
            await self._tx.events.append(found)

    async def _feed(self, event: AuditEvent, current: Mapping[str, Any] | None) -> list[NewEvent]:
        """The feed events of one audit event (none for an action that changes nothing)."""
        feed_type = FEED_TYPES.get(event.action)
        if feed_type is None:
            return []
        found: list[NewEvent] = []
        subject = _subject(feed_type, event)
        document = None
        if subject is not None and self._first(feed_type, subject):
            if current is not None:
                document = _doc(dict(current))
            else:
                document = await self._document(subject)
            found.append(_event(feed_type, subject, event, document))
        joins = feed_type in ("user.created", "invitation.accepted")
        if joins and event.organization_id and event.subject_user_id:
            joined = _membership(event.subject_user_id, event.organization_id)
            if self._first("membership.added", joined):
                # A new user's document holds the membership already: no second read.
                new_user = feed_type == "user.created"
                held = _held(document, event.organization_id) if new_user else None
                held = held or await self._document(joined)
                found.append(_event("membership.added", joined, event, held))
        return found

    async def query(self, query: AuditQuery) -> list[AuditEntry]:
        return await self._audit.query(query)

    async def delete_older_than(self, days: float, *, limit: int) -> int:
        return await self._audit.delete_older_than(days, limit=limit)

    def _first(self, feed_type: str, subject: _Subject) -> bool:
        """True the first time this transaction announces this change of this subject."""
        key = (feed_type, f"{subject.type}:{subject.id}")
        if key in self._written:
            return False
        self._written.add(key)
        return True

    async def _document(self, subject: _Subject) -> dict[str, Any] | None:
        tx = self._tx
        if subject.type == USER and subject.user_id is not None:
            view = await tx.users.view(subject.user_id)
            return _doc(user_json(view)) if view is not None else None
        if subject.type == ORGANIZATION and subject.organization_id is not None:
            summary = await tx.organizations.summary(subject.organization_id)
            if summary is None:
                return None
            return _doc(organization_json(summary.organization, summary.members))
        if subject.type == MEMBERSHIP and subject.user_id and subject.organization_id:
            found = await tx.memberships.get(subject.user_id, subject.organization_id)
            if found is None:
                return None
            return {"user_id": str(found.user_id), **membership_json(found)}
        if subject.type == INVITATION and subject.invitation_id is not None:
            record = await tx.invitations.get(subject.invitation_id)
            return _doc(invitation_json(record, record.updated_at)) if record else None
        return None


def _event(
    feed_type: str, subject: _Subject, event: AuditEvent, document: dict[str, Any] | None
) -> NewEvent:
    """The feed event; the store adds the version, the changed fields and the operation's
    idempotency key."""
    return NewEvent(
        id=uuid4(),
        type=feed_type,
        subject_type=subject.type,
        subject_id=subject.id,
        organization_id=subject.organization_id or event.organization_id,
        user_id=subject.user_id,
        invitation_id=subject.invitation_id,
        data=document,
        organization_ids=_audience(subject, event, document),
        operation_id=event.operation_id,
    )


def _held(user: dict[str, Any] | None, organization_id: UUID) -> dict[str, Any] | None:
    """The membership document of ``organization_id`` inside a user's document."""
    if user is None:
        return None
    for membership in user.get("organizations", ()):
        if membership["organization_id"] == str(organization_id):
            return {"user_id": user["id"], **membership}
    return None


def _audience(
    subject: _Subject, event: AuditEvent, document: dict[str, Any] | None
) -> tuple[UUID, ...]:
    """The organizations whose tokens see the event: its own, and a user's memberships."""
    found = [o for o in (subject.organization_id, event.organization_id) if o is not None]
    if subject.type == USER and document is not None:
        found += [UUID(m["organization_id"]) for m in document.get("organizations", ())]
    return tuple(dict.fromkeys(found))


def _membership(user_id: UUID, organization_id: UUID) -> _Subject:
    return _Subject(MEMBERSHIP, f"{user_id}:{organization_id}", user_id, organization_id, None)


def _subject(feed_type: str, event: AuditEvent) -> _Subject | None:
    """Whom the event is about, or None when the audit event names no subject."""
    kind = subject_type_of(feed_type)
    user, org = event.subject_user_id, event.organization_id
    if kind == USER:
        return _Subject(USER, str(user), user, None, None) if user else None
    if kind == ORGANIZATION:
        return _Subject(ORGANIZATION, str(org), None, org, None) if org else None
    if kind == MEMBERSHIP:
        return _membership(user, org) if user and org else None
    invitation = event.data.get("invitation_id")
    if not invitation:
        return None
    return _Subject(INVITATION, str(invitation), user, org, UUID(str(invitation)))
