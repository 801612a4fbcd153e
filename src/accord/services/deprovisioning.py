"""Deprovisioning: access is cut at once (in the claim the row is ``disabled`` and its e-mail
retired to ``former_email``, so whoever uses the address next is a new person), then the IdP
user is deleted (only one that accord linked: created or adopted), then memberships, link and
pending links are removed. Idempotent: deprovisioning a disabled user succeeds and does nothing.
If the IdP refuses the delete, or it never becomes reachable, the user stays disabled.
Each change is audited (and so in the change feed) in its own transaction: ``user.deprovisioned``
in the claim, a ``membership.removed`` per organization in the finalize.

The deprovisioned user's personal organization stays as it is (its other members keep their
places, ``owner_user_id`` still names the former user, for its history): a platform
administrator decides what becomes of it.

An organization-scoped caller deletes a person everywhere only when the person belongs to its
organization alone and accord created their identity. Otherwise (a member of another
organization too, or an identity accord adopted) its DELETE removes the membership in its own
organization, in the claim's one transaction (audited ``membership.removed``), and never
touches the IdP. Another organization's user answers ``user_not_found``, as a missing one does.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import OperationKind, UserStatus
from accord.domain.principals import audit_by
from accord.domain.records import AuditEvent
from accord.domain.store import OperationChanges, Transaction
from accord.services import crashpoints, operations
from accord.services.context import Context, Flow, Step
from accord.services.crashpoints import CrashPoint
from accord.services.ids import parse_id


async def deprovision_user(
    accord: Context,
    user_id: str | UUID,
    *,
    caller: Caller,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Remove a user's access everywhere. Returns ``{"operation_id", "user_id", "status"}``."""
    uid = parse_id(user_id, "The user id")
    return await operations.execute(
        accord,
        OperationKind.DEPROVISION,
        caller=caller,
        idempotency_key=idempotency_key,
        request={"user_id": str(uid), "scope": caller_scope(caller)},
    )


def caller_scope(caller: Caller) -> str | None:
    return None if caller.is_platform else str(caller.organization_id)


class Deprovision(Flow):
    kind = OperationKind.DEPROVISION

    async def claim(self, tx: Transaction, accord: Context, step: Step) -> OperationChanges:
        request = step.op.request
        user_id = UUID(request["user_id"])
        user = await tx.users.get(user_id, lock=True)
        orgs = await tx.memberships.organizations_of(user_id) if user else []
        scope = request.get("scope")
        if user is None or (scope is not None and scope not in {str(o) for o in orgs}):
            raise errors.UserNotFound(f"No user {user_id}.")  # G10: another tenant's, alike
        if user.status == UserStatus.PROVISIONING:
            raise errors.OperationInProgress(
                "The user is still being provisioned; retry when that operation has finished."
            )
        link = await tx.links.get(user_id, accord.idp.name)
        email = user.email or user.former_email
        if scope is not None and (
            any(str(o) != scope for o in orgs) or (link is not None and not link.created_by_accord)
        ):
            return await self._remove_membership(tx, step, user_id, UUID(scope), email)
        state = {
            "previous_status": user.status.value,
            "email": email,
            "remote_id": link.remote_id if link else None,
        }
        already = user.status == UserStatus.DISABLED
        if not already:  # a repeat changes nothing (not even the row's version)
            await tx.users.retire(user_id)
        # Audited (and so announced in the change feed) with the change, in this transaction.
        await tx.audit.record(
            AuditEvent(
                **audit_by(step.op.request),
                action="user.deprovision_repeated" if already else "user.deprovisioned",
                subject_user_id=user_id,
                subject_email=email,
                operation_id=step.op.id,
                data={"remote_id": state["remote_id"]},
            )
        )
        return {"user_id": user_id, "flow_state": state}

    async def _remove_membership(
        self, tx: Transaction, step: Step, user_id: UUID, org_id: UUID, email: str | None
    ) -> OperationChanges:
        """An organization's DELETE of a shared or adopted user: its membership only."""
        await tx.memberships.remove(user_id, org_id)
        await tx.audit.record(
            AuditEvent(
                actor=step.op.request["actor"],
                action="membership.removed",
                subject_user_id=user_id,
                subject_email=email,
                organization_id=org_id,
                operation_id=step.op.id,
            )
        )
        state = {"removed_from_organization": str(org_id), "email": email}
        return {"user_id": user_id, "flow_state": state}

    async def ensure_remote(self, accord: Context, step: Step) -> OperationChanges:
        if step.op.flow_state.get("removed_from_organization"):
            return {"remote_id": None, "created_remote": False}  # the IdP is never touched
        remote_id = step.op.flow_state.get("remote_id")
        if remote_id:
            await accord.idp.delete(remote_id)  # idempotent: a missing user is fine
            crashpoints.reach(accord.settings, CrashPoint.IDP_CALL_SENT)
        return {"remote_id": remote_id, "created_remote": False}

    async def finalize(self, tx: Transaction, accord: Context, step: Step) -> dict[str, Any]:
        op = step.op
        assert op.user_id is not None
        removed = op.flow_state.get("removed_from_organization")
        if removed:
            user = await tx.users.get(op.user_id)
            status = user.status.value if user else UserStatus.DISABLED.value
            return {
                "user_id": str(op.user_id),
                "status": status,
                "removed_from_organization": removed,
            }
        for org_id in await tx.memberships.organizations_of(op.user_id):
            await tx.memberships.remove(op.user_id, org_id)
            await tx.audit.record(
                AuditEvent(
                    **audit_by(op.request),
                    action="membership.removed",
                    subject_user_id=op.user_id,
                    subject_email=op.flow_state["email"],
                    organization_id=org_id,
                    operation_id=op.id,
                    data={"reason": "user.deprovisioned"},
                )
            )
        await tx.links.unlink_all(op.user_id)
        await tx.one_time_tokens.delete_for_user(op.user_id)
        await tx.outbox.delete_unsent(op.flow_state["email"])
        return {"user_id": str(op.user_id), "status": UserStatus.DISABLED.value}

    async def undo_remote(self, accord: Context, step: Step) -> bool:
        return False  # nothing was created

    async def undo_claim(self, tx: Transaction, accord: Context, step: Step) -> None:
        # The user stays disabled: giving access back to someone an admin removed would be the
        # worse failure. The IdP user and its link stay, for `accord reconcile` to report.
        return None
