"""Deprovisioning: access is cut at once (in the claim the row is ``disabled``, its e-mail
retired to ``former_email`` so that whoever uses the address next is a new person, and every
membership ends, each through ``services/leaving.py``: the last ``org_admin`` of a team
organization is not deprovisioned, ``last_admin``; and the set-password links and unsent mail
are deleted), then the IdP user is deleted (only one that accord linked: created or adopted),
then the link is removed. Each change is audited (and so in the change feed) in the
transaction that makes it: ``membership.removed`` per organization and ``user.deprovisioned``
in the claim. Idempotent: deprovisioning a disabled user succeeds and changes nothing. If the
IdP refuses the delete, or it never becomes reachable, the user stays disabled.

Locks: the user's organizations first (in id order), then the user's row, the order an
organization's deletion takes (``offboarding.py``: the organization, then its members), so a
person deprovisioned while one of their organizations is deleted never deadlocks.

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
from accord.domain.records import AuditEvent, OrganizationRecord
from accord.domain.store import OperationChanges, Transaction
from accord.services import crashpoints, leaving, operations
from accord.services.context import Context, Flow, Step
from accord.services.crashpoints import CrashPoint
from accord.services.ids import parse_id


async def deprovision_user(
    accord: Context,
    user_id: str | UUID,
    *,
    caller: Caller,
    idempotency_key: str | None = None,
    leaving: UUID | None = None,
) -> dict[str, Any]:
    """Remove a user's access everywhere. Returns ``{"operation_id", "user_id", "status"}``.

    ``leaving``: an organization whose membership is being removed, with the setting
    ``last_membership_removed=deprovision``; the person is deprovisioned only if it is their
    last membership, and otherwise loses that one membership (``removed_from_organization``),
    in the same operation either way."""
    uid = parse_id(user_id, "The user id")
    request: dict[str, Any] = {"user_id": str(uid), "scope": caller_scope(caller)}
    if leaving is not None:
        request["leaving"] = str(leaving)
    return await operations.execute(
        accord,
        OperationKind.DEPROVISION,
        caller=caller,
        idempotency_key=idempotency_key,
        request=request,
    )


def caller_scope(caller: Caller) -> str | None:
    return None if caller.is_platform else str(caller.organization_id)


class Deprovision(Flow):
    kind = OperationKind.DEPROVISION

    async def claim(self, tx: Transaction, accord: Context, step: Step) -> OperationChanges:
        request = step.op.request
        user_id = UUID(request["user_id"])
        scope, named = request.get("scope"), request.get("leaving")
        ending = scope or named  # the one organization whose membership this request ends
        # Organizations first, then the user: the order an organization's deletion takes (its
        # row, then its members'), so the two never wait for each other in a cycle.
        locked = await leaving.lock(
            tx, [UUID(ending)] if ending else await tx.memberships.organizations_of(user_id)
        )
        user = await tx.users.get(user_id, lock=True)
        orgs = {str(o) for o in await tx.memberships.organizations_of(user_id)} if user else set()
        if user is None or (scope is not None and scope not in orgs):
            raise errors.UserNotFound(f"No user {user_id}.")  # G10: another tenant's, alike
        if named is not None and named not in orgs:
            raise errors.MembershipNotFound(
                f"User {user_id} is not a member of organization {named}."
            )
        if user.status == UserStatus.PROVISIONING:
            raise errors.OperationInProgress(
                "The user is still being provisioned; retry when that operation has finished."
            )
        link = await tx.links.get(user_id, accord.idp.name)
        email = user.email or user.former_email
        shared = ending is not None and orgs != {ending}
        adopted = scope is not None and link is not None and not link.created_by_accord
        if shared or adopted:
            assert ending is not None
            return await self._remove_membership(tx, step, locked, user_id, UUID(ending), email)
        state = {
            "previous_status": user.status.value,
            "email": email,
            "remote_id": link.remote_id if link else None,
        }
        await self._leave_everything(tx, step, locked, user_id, email, named)
        already = user.status == UserStatus.DISABLED
        if not already:  # a repeat changes nothing (not even the row's version)
            await tx.users.retire(user_id)
            # With access, its links and mail go now: a set-password link must not outlive it.
            # (Not on a repeat: the retired address may be someone else's by now.)
            await tx.one_time_tokens.delete_for_user(user_id)
            if user.email:
                await tx.outbox.delete_unsent(user.email)
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
        self,
        tx: Transaction,
        step: Step,
        locked: dict[UUID, OrganizationRecord],
        user_id: UUID,
        org_id: UUID,
        email: str | None,
    ) -> OperationChanges:
        """One membership only: an organization's DELETE of a shared or adopted user, or a
        removal that leaves the person other organizations (``org_id`` is locked already)."""
        current = await tx.memberships.get(user_id, org_id)
        if org_id not in locked or current is None:  # removed meanwhile
            raise errors.MembershipNotFound(f"User {user_id} is not a member of {org_id}.")
        by = audit_by(step.op.request)
        await leaving.leave(
            tx, locked[org_id], current, by=by, email=email, operation_id=step.op.id
        )
        left = len(await tx.memberships.organizations_of(user_id))
        state = {"removed_from_organization": str(org_id), "email": email, "left": left}
        return {"user_id": user_id, "flow_state": state}

    async def _leave_everything(
        self,
        tx: Transaction,
        step: Step,
        locked: dict[UUID, OrganizationRecord],
        user_id: UUID,
        email: str | None,
        named: str | None,
    ) -> None:
        """Every membership ends in the claim (access is cut at once), each passing the
        organization rules; ``named``: the organization whose removal asked for this, where
        even a personal organization's owner is not let go. ``locked``: the organizations
        locked before the user. If the user joined another between that read and the user's
        lock (a join that was waiting for the user's lock too, so not rare under load), it
        is not locked now: out of id order, two such deprovisionings deadlock. The claim is
        run again instead, and then reads the organizations it has to lock first."""
        joined = set(await tx.memberships.organizations_of(user_id)) - set(locked)
        if joined:
            raise errors.TransactionConflict(
                f"User {user_id} joined an organization while being deprovisioned; retry."
            )
        by = audit_by(step.op.request)
        for org_id, org in sorted(locked.items()):
            current = await tx.memberships.get(user_id, org_id)
            if current is None:
                continue
            owner_leaves = named is None or str(org_id) != named
            await leaving.leave(
                tx,
                org,
                current,
                by=by,
                email=email,
                operation_id=step.op.id,
                owner_leaves=owner_leaves,
            )

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
                "memberships_left": op.flow_state.get("left"),
            }
        await tx.links.unlink_all(op.user_id)
        return {"user_id": str(op.user_id), "status": UserStatus.DISABLED.value}

    async def undo_remote(self, accord: Context, step: Step) -> bool:
        return False  # nothing was created

    async def undo_claim(self, tx: Transaction, accord: Context, step: Step) -> None:
        # The user stays disabled: giving access back to someone an admin removed would be the
        # worse failure. The IdP user and its link stay, for `accord reconcile` to report.
        return None
