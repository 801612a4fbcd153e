"""Suspension and reactivation: the IdP's own block and ``status: suspended`` in the database,
kept equal by one durable operation each.

**When the database flips.** A suspension cuts access at once: its claim sets the row to
``suspended`` (sign-in through accord, set-password mail and new sessions stop with that
commit), then the IdP blocks the identity (Auth0 ``blocked``, Keycloak ``enabled: false``,
Supabase ``ban_duration``, local: sign-in refused and its sessions ended), then finalize audits
``user.suspended``. A reactivation gives access back only once the IdP has: the row stays
``suspended`` until finalize, after the IdP unblocked the identity, and then returns to the
status it had before the suspension (``pending`` for someone who never set a password, who
then gets a fresh set-password mail: the suspension removed their links and unsent mail).

**Compensation.** An IdP that refuses a suspension (``idp_rejected``) leaves the identity as it
was, so the row goes back to its previous status: the two systems stay equal and the caller
learns that the suspension did not happen. A suspension that ran out of its retry budget (the
IdP never answered) stays ``suspended`` in the database: cutting access was asked for, and
``accord reconcile --fix`` blocks the identity once the IdP answers. A refused reactivation
leaves the user suspended, and blocks the identity again in case it was unblocked.

**Idempotent.** Suspending a suspended user succeeds and changes nothing (the IdP is asked to
block again, which is how a drifted identity is put right); reactivating a user who is not
suspended likewise. One operation per user at a time: a suspension or reactivation while another
operation works on the user answers ``operation_in_progress``.

**Tenancy.** A platform caller acts on anyone. An organization-scoped caller acts on users whose
every membership is in its organization; a member of another organization too answers 403
``forbidden`` (a platform administrator decides), and a user who is not a member of its
organization answers ``user_not_found``, exactly as a missing one (G10).
"""

from __future__ import annotations

import contextlib
from typing import Any
from uuid import UUID

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import OperationKind, UserStatus
from accord.domain.principals import audit_by
from accord.domain.records import AuditEvent, AuditQuery, UserRecord
from accord.domain.store import OperationChanges, Transaction
from accord.services import crashpoints, credentials, operations
from accord.services.context import Context, Flow, Step
from accord.services.crashpoints import CrashPoint
from accord.services.deprovisioning import caller_scope
from accord.services.ids import parse_id
from accord.services.views import user_json

SUSPENDED = "user.suspended"
REACTIVATED = "user.reactivated"
# How many of a user's suspension events are read to find the status before the last one.
HISTORY_LIMIT = 500


async def suspend_user(
    accord: Context, user_id: str | UUID, *, caller: Caller, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Block a user in the IdP and in accord. Returns ``{"operation_id", "user"}``."""
    return await _run(accord, OperationKind.SUSPEND, user_id, caller, idempotency_key)


async def reactivate_user(
    accord: Context, user_id: str | UUID, *, caller: Caller, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Unblock a suspended user in the IdP, then in accord. Returns ``{"operation_id", "user"}``."""
    return await _run(accord, OperationKind.REACTIVATE, user_id, caller, idempotency_key)


async def _run(
    accord: Context, kind: OperationKind, user_id: str | UUID, caller: Caller, key: str | None
) -> dict[str, Any]:
    uid = parse_id(user_id, "The user id")
    return await operations.execute(
        accord,
        kind,
        caller=caller,
        idempotency_key=key,
        request={"user_id": str(uid), "scope": caller_scope(caller)},
    )


async def _claimable(tx: Transaction, step: Step) -> UserRecord:
    """The request's user, locked, if this caller may suspend or reactivate them."""
    request = step.op.request
    user_id = UUID(request["user_id"])
    user = await tx.users.get(user_id, lock=True)
    orgs = {str(o) for o in await tx.memberships.organizations_of(user_id)} if user else set()
    scope = request.get("scope")
    if user is None or (scope is not None and scope not in orgs):
        raise errors.UserNotFound(f"No user {user_id}.")  # G10: another tenant's, alike
    if scope is not None and orgs != {scope}:
        raise errors.Forbidden(
            "The user is also a member of another organization: a platform administrator "
            "suspends or reactivates them."
        )
    if user.status == UserStatus.DISABLED:
        raise errors.UserDeprovisioned(f"User {user_id} was deprovisioned.")
    if user.status == UserStatus.PROVISIONING:
        raise errors.OperationInProgress(
            "The user is still being provisioned; retry when that operation has finished."
        )
    busy = await tx.operations.open_for_user(user_id)
    if busy is not None and busy.id != step.op.id:
        raise errors.OperationInProgress(
            f"Operation {busy.id} ({busy.kind.value}) is working on this user; retry when it "
            "has finished."
        )
    return user


async def _state(tx: Transaction, accord: Context, user: UserRecord) -> dict[str, Any]:
    link = await tx.links.get(user.id, accord.idp.name)
    return {
        "previous_status": user.status.value,
        "email": user.email,
        "remote_id": link.remote_id if link else None,
    }


async def _set_remote(accord: Context, step: Step, enabled: bool) -> OperationChanges:
    remote_id = step.op.flow_state.get("remote_id")
    if remote_id:
        await accord.idp.set_enabled(remote_id, enabled)
        crashpoints.reach(accord.settings, CrashPoint.IDP_CALL_SENT)
    return {"remote_id": remote_id, "created_remote": False}


async def _finish(
    tx: Transaction, step: Step, status: UserStatus, action: str, *, changed: bool
) -> dict[str, Any]:
    """Hold the row at ``status`` (a deprovisioned one stays so), audit, answer the user."""
    op = step.op
    assert op.user_id is not None
    user = await tx.users.get(op.user_id, lock=True)
    if user is not None and user.status not in (UserStatus.DISABLED, status):
        await tx.users.update(op.user_id, status=status)
    await tx.audit.record(
        AuditEvent(
            **audit_by(op.request),
            action=action if changed else f"{action}_repeated",
            subject_user_id=op.user_id,
            subject_email=op.flow_state.get("email"),
            operation_id=op.id,
            data={
                "previous_status": op.flow_state["previous_status"],
                "remote_id": op.flow_state.get("remote_id"),
            },
        )
    )
    view = await tx.users.view(op.user_id)
    return {"user_id": str(op.user_id), "user": user_json(view) if view else None}


class Suspend(Flow):
    """Claim: the row is ``suspended`` at once. IdP: block. Finalize: audit."""

    kind = OperationKind.SUSPEND

    async def claim(self, tx: Transaction, accord: Context, step: Step) -> OperationChanges:
        user = await _claimable(tx, step)
        state = await _state(tx, accord, user)
        if user.status != UserStatus.SUSPENDED:
            await tx.users.update(user.id, status=UserStatus.SUSPENDED)  # access is cut now
            # Its set-password links and unsent mail go too: nobody sets a password meanwhile.
            await tx.one_time_tokens.delete_for_user(user.id)
            if user.email is not None:
                await tx.outbox.delete_unsent(user.email)
        return {"user_id": user.id, "flow_state": state}

    async def ensure_remote(self, accord: Context, step: Step) -> OperationChanges:
        try:
            return await _set_remote(accord, step, False)
        except errors.RemoteNotFound:  # no identity is left to sign in with: nothing to block
            return {"remote_id": step.op.flow_state.get("remote_id"), "created_remote": False}

    async def finalize(self, tx: Transaction, accord: Context, step: Step) -> dict[str, Any]:
        # The claim set the status; "changed" is judged against the status before the claim.
        changed = step.op.flow_state["previous_status"] != UserStatus.SUSPENDED
        return await _finish(tx, step, UserStatus.SUSPENDED, SUSPENDED, changed=changed)

    async def undo_remote(self, accord: Context, step: Step) -> bool:
        return False  # the IdP refused the block, or never answered: nothing to take back

    async def undo_claim(self, tx: Transaction, accord: Context, step: Step) -> None:
        if (step.op.error or {}).get("code") == errors.RetryBudgetExhausted.code:
            return None  # keep access cut; reconcile blocks the identity when the IdP answers
        assert step.op.user_id is not None
        previous = UserStatus(step.op.flow_state["previous_status"])
        await _restore_if(tx, step.op.user_id, UserStatus.SUSPENDED, previous)


class Reactivate(Flow):
    """Claim: check. IdP: unblock. Finalize: the status before the suspension, audit."""

    kind = OperationKind.REACTIVATE

    async def claim(self, tx: Transaction, accord: Context, step: Step) -> OperationChanges:
        user = await _claimable(tx, step)
        state = await _state(tx, accord, user)
        state["restore_status"] = (
            (await _status_before_suspension(tx, user.id)).value
            if user.status == UserStatus.SUSPENDED
            else user.status.value
        )
        return {"user_id": user.id, "flow_state": state}

    async def ensure_remote(self, accord: Context, step: Step) -> OperationChanges:
        try:
            return await _set_remote(accord, step, True)
        except errors.RemoteNotFound:
            raise errors.RemoteRejected(
                "The identity provider has no account for this user any more: run "
                "`accord reconcile` to repair the user, then reactivate."
            ) from None

    async def finalize(self, tx: Transaction, accord: Context, step: Step) -> dict[str, Any]:
        restore = UserStatus(step.op.flow_state["restore_status"])
        changed = step.op.flow_state["previous_status"] == UserStatus.SUSPENDED
        result = await _finish(tx, step, restore, REACTIVATED, changed=changed)
        if changed and restore == UserStatus.PENDING:  # the suspension took their link away
            assert step.op.user_id is not None
            await credentials.invite_again(
                tx, accord, step.op.user_id, f"reactivation:{step.op.id}"
            )
        return result

    async def undo_remote(self, accord: Context, step: Step) -> bool:
        remote_id = step.op.flow_state.get("remote_id")
        if remote_id and step.op.flow_state["previous_status"] == UserStatus.SUSPENDED:
            # The unblock may have been applied before the failure: block again.
            with contextlib.suppress(errors.RemoteNotFound, errors.RemoteRejected):
                await accord.idp.set_enabled(remote_id, False)
            crashpoints.reach(accord.settings, CrashPoint.UNDO_SENT)
        return False

    async def undo_claim(self, tx: Transaction, accord: Context, step: Step) -> None:
        return None  # the claim changed nothing: the user stays as they were


async def _restore_if(tx: Transaction, user_id: UUID, expected: UserStatus, to: UserStatus) -> None:
    """Set the row to ``to`` only while it is ``expected`` (nothing else changed it)."""
    user = await tx.users.get(user_id, lock=True)
    if user is not None and user.status == expected and expected != to:
        await tx.users.update(user_id, status=to)


async def _status_before_suspension(tx: Transaction, user_id: UUID) -> UserStatus:
    """The status the user had when last suspended (from the audit trail); ``active`` when the
    trail no longer says (housekeeping deleted it)."""
    events = await tx.audit.query(
        AuditQuery(user_id=user_id, action=SUSPENDED, limit=HISTORY_LIMIT)
    )
    for entry in reversed(events):
        previous = (entry.event.data or {}).get("previous_status")
        if previous in (UserStatus.PENDING, UserStatus.ACTIVE):
            return UserStatus(previous)
    return UserStatus.ACTIVE
