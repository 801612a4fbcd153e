"""Drift between accord's rows and the identity provider: its classes, and what may be repaired.

Pure: the services feed it what the database and the IdP said, and it answers which class of
drift a row or an IdP user is in and what ``reconcile --fix`` may do about it. Nothing here
decides *how* a repair is made safe (locks, re-checks): that is services/repairs.py.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from accord.domain.errors import ReconcileRunning as ReconcileRunning  # re-exported


class DriftClass(StrEnum):
    """The classes of drift, in the order reconcile reports them (the keys of its JSON)."""

    ORPHAN_IDP_USERS = "orphan_idp_users"  # an IdP user no row links to
    ORPHAN_ROWS = "orphan_rows"  # a row with no working IdP user
    UNLINKED_MATCHES = "unlinked_matches"  # same e-mail on both sides, no (valid) link
    EMAIL_MISMATCHES = "email_mismatches"  # linked, but the e-mails differ
    STUCK_OPERATIONS = "stuck_operations"  # open past their deadline, or idle with no worker
    DUPLICATE_ORGANIZATIONS = "duplicate_organizations"  # one user owns several alone
    # linked, same e-mail, but the IdP's block differs from the row's status (suspended or not)
    ENABLED_MISMATCHES = "enabled_mismatches"


class OrphanRowPolicy(StrEnum):
    """What ``--fix`` does with rows whose IdP user is gone (``--orphan-rows``)."""

    REPORT = "report"
    DEPROVISION = "deprovision"  # cut access: disabled, no memberships, no link
    RECREATE = "recreate"  # a new IdP user for the row, linked, and a set-password mail


class ForeignPolicy(StrEnum):
    """What ``--fix`` does with IdP users accord may not delete (``--foreign-idp-users``)."""

    REPORT = "report"
    ADOPT = "adopt"  # a user row (no memberships) linked to the existing IdP user


class Action(StrEnum):
    """What reconcile did (or, in a dry run, would do) about one finding."""

    LINK = "link"
    DELETE_IDP_USER = "delete_idp_user"
    ADOPT = "adopt"
    DEPROVISION = "deprovision"
    REMOVE_ROW = "remove_row"
    RECREATE = "recreate"
    RESUME = "resume"  # drive the operation to its end: finished, or compensated
    LEAVE = "leave"  # a person decides
    BLOCK = "block_idp_user"  # the row is suspended: the IdP refuses its sign-in too
    UNBLOCK = "unblock_idp_user"  # the row is not suspended: the IdP lets it sign in again


class OrphanReason(StrEnum):
    IDP_USER_MISSING = "idp_user_missing"  # linked, and the IdP says the user is gone
    NO_LINK = "no_link"  # pending/active, never linked, no IdP user with its e-mail
    NEVER_FINISHED = "never_finished"  # left in `provisioning` by a request that died


@dataclass
class Finding:
    """One item of drift: its class, the e-mail it is about, its ids, and what was done."""

    drift: DriftClass
    email: str
    ids: dict[str, Any] = field(default_factory=dict)
    action: Action = Action.LEAVE
    done: bool = False  # the action was applied (only under --fix)
    note: str = ""

    @property
    def remaining(self) -> bool:
        """Whether this drift is still there (for the exit status)."""
        return not self.done

    def as_dict(self) -> dict[str, Any]:
        """The finding as one JSON item."""
        return {
            "email": self.email,
            **self.ids,
            "action": self.action.value,
            "done": self.done,
            "note": self.note,
        }


def email_key(email: str | None) -> str:
    """The spelling both sides are joined on: trimmed, NFC, lower-case (no validation)."""
    return unicodedata.normalize("NFC", (email or "").strip()).lower()


# -- rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowView:
    """A user row as the join saw it; only rows that are not plainly healthy get here."""

    user_id: str
    email: str
    status: str
    link_remote_id: str | None
    link_email: str | None  # the linked IdP user's e-mail, when the listing had it
    match_remote_id: str | None  # an IdP user with the row's e-mail
    match_linked_to: str | None  # the row that IdP user is linked to, if any
    link_enabled: bool | None = None  # whether the linked IdP user may sign in, if listed
    link_created_by_accord: bool | None = None  # the link's identity is one accord made


def classify_row(
    row: RowView,
    remote_email: str | None,
    policy: OrphanRowPolicy,
    remote_enabled: bool | None = None,
) -> Finding | None:
    """The drift of a row. ``remote_email`` is the e-mail of its linked IdP user as confirmed
    (None when the IdP says that user is gone, or there is no link); ``remote_enabled`` whether
    that user may sign in (None: not known, judged healthy)."""
    ids: dict[str, Any] = {"user_id": row.user_id, "status": row.status}
    if row.link_remote_id and remote_email is not None:
        if email_key(remote_email) == row.email:
            return _enabled_mismatch(row, ids, remote_enabled)  # else healthy
        ids |= {"remote_id": row.link_remote_id, "idp_email": remote_email}
        return Finding(DriftClass.EMAIL_MISMATCHES, row.email, ids, note=MISMATCH_NOTE)
    match_free = row.match_remote_id and row.match_linked_to in (None, row.user_id)
    if row.status != "provisioning" and match_free:
        ids |= {"remote_id": row.match_remote_id, "stale_remote_id": row.link_remote_id}
        return Finding(DriftClass.UNLINKED_MATCHES, row.email, ids, Action.LINK)
    return _orphan_row(row, ids, policy)


MISMATCH_NOTE = "a person decides which e-mail is right, then changes the other side"


def _enabled_mismatch(
    row: RowView, ids: dict[str, Any], remote_enabled: bool | None
) -> Finding | None:
    """A linked row whose IdP user's block differs from its status: repaired toward the
    database (the status is what an administrator last decided, through accord). A block that
    another system put on an identity it made (adopted, not suspended in accord) is its own
    (G11): not drift."""
    wanted = row.status != "suspended"
    if remote_enabled is None or remote_enabled == wanted or row.status == "provisioning":
        return None
    if wanted and row.link_created_by_accord is False:
        return None
    ids |= {"remote_id": row.link_remote_id, "idp_enabled": remote_enabled}
    action = Action.UNBLOCK if wanted else Action.BLOCK
    note = "suspended in accord, enabled in the IdP" if not wanted else "blocked in the IdP only"
    return Finding(DriftClass.ENABLED_MISMATCHES, row.email, ids, action, note=note)


def _orphan_row(row: RowView, ids: dict[str, Any], policy: OrphanRowPolicy) -> Finding:
    if row.status == "provisioning":
        reason = OrphanReason.NEVER_FINISHED
    elif row.link_remote_id:
        reason = OrphanReason.IDP_USER_MISSING
    else:
        reason = OrphanReason.NO_LINK
    ids |= {"reason": reason.value, "remote_id": row.link_remote_id}
    if row.match_remote_id:
        ids["idp_user_with_email"] = row.match_remote_id
    action = orphan_row_action(reason, policy, has_match=bool(row.match_remote_id))
    return Finding(DriftClass.ORPHAN_ROWS, row.email, ids, action)


def orphan_row_action(reason: OrphanReason, policy: OrphanRowPolicy, *, has_match: bool) -> Action:
    """What ``--orphan-rows`` does with an orphan row."""
    if policy == OrphanRowPolicy.REPORT:
        return Action.LEAVE
    if reason == OrphanReason.NEVER_FINISHED:
        # Nothing was ever granted: removing the row is the whole deprovisioning. There is no
        # request left to recreate it from, so `recreate` leaves it to a person.
        return Action.REMOVE_ROW if policy == OrphanRowPolicy.DEPROVISION else Action.LEAVE
    if has_match:  # another identity holds its e-mail: a person untangles that
        return Action.LEAVE
    return Action.DEPROVISION if policy == OrphanRowPolicy.DEPROVISION else Action.RECREATE


# -- IdP users -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdpUserView:
    """An IdP user that no row links to, with what the database knows about its e-mail."""

    remote_id: str
    email: str
    accord_user_id: str | None  # accord's stamp: a caller-chosen id, metadata or attribute
    created_by_operation: bool  # an operation recorded that it created this IdP user
    finalized: bool  # an operation that created or adopted it succeeded
    row_status: str | None  # the row with its e-mail, if any
    row_linked_elsewhere: bool  # that row is linked to another IdP user


def classify_idp_user(user: IdpUserView, policy: ForeignPolicy) -> Finding:
    """The drift of an IdP user that no row links to, and what --fix may do about it."""
    by_accord = user.accord_user_id is not None or user.created_by_operation
    ids = {
        "remote_id": user.remote_id,
        "created_by_accord": by_accord,
        "accord_user_id": user.accord_user_id,
        "finalized": user.finalized,
    }
    action, note = _idp_user_action(user, by_accord, policy)
    return Finding(DriftClass.ORPHAN_IDP_USERS, user.email, ids, action, note=note)


def _idp_user_action(
    user: IdpUserView, by_accord: bool, policy: ForeignPolicy
) -> tuple[Action, str]:
    if user.row_linked_elsewhere:
        return Action.LEAVE, "a second IdP user for a linked e-mail: a person picks one"
    deprovisioned = user.row_status == "disabled"
    if by_accord and (not user.finalized or deprovisioned):
        return Action.DELETE_IDP_USER, "accord created it and never finished (or removed) it"
    if deprovisioned:
        return Action.LEAVE, "its user was deprovisioned; delete it in the IdP if it is stale"
    if policy == ForeignPolicy.ADOPT:
        return Action.ADOPT, "adopted: it gets a row without memberships"
    if by_accord:
        return Action.LEAVE, "its row was removed after it was finished; `users create` adopts it"
    return Action.LEAVE, "not created by accord: --foreign-idp-users adopt, or delete it in the IdP"


# -- operations and organizations ----------------------------------------------------------------


def stuck_operation(op: dict[str, Any]) -> Finding:
    """A stuck operation: resuming it finishes it, or the engine compensates it."""
    ids = {
        "operation_id": op["id"],
        "kind": op["kind"],
        "recovery_point": op["recovery_point"],
        "user_id": op.get("user_id"),
        "past_deadline": op["past_deadline"],
        "attempts": op["attempts"],
    }
    return Finding(DriftClass.STUCK_OPERATIONS, op.get("email") or "", ids, Action.RESUME)


def duplicate_organizations(owner: dict[str, Any]) -> Finding:
    """A user who owns several organizations alone: a person merges them (``orgs merge``)."""
    orgs = owner["organizations"]
    keep = orgs[0]  # personal first, then the oldest: see adapters/db/drift.py
    merges = [f"accord orgs merge {o['id']} {keep['id']}" for o in orgs[1:]]
    ids = {"user_id": owner["user_id"], "organizations": orgs, "suggested": merges}
    note = f"keep {keep['slug']}, merge the others into it"
    return Finding(DriftClass.DUPLICATE_ORGANIZATIONS, owner["email"], ids, note=note)
