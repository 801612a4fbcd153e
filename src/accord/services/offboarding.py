"""Offboarding an organization: a customer leaves, and everything of theirs goes with them in
one durable operation (platform callers only).

1. claim (one transaction): the organization's row is locked; its members' user rows are locked
   (in id order: two offboardings never deadlock, and no membership elsewhere can be added to
   them meanwhile); the members with no other organization are deprovisioned as
   ``services/deprovisioning.py`` does (``disabled``, the address retired), unless
   ``keep_users``; then the organization is deleted, and its memberships, API tokens and
   pending invitations with it. Access ends with this commit: the tokens answer 401, the
   members' sessions in it are gone.
2. the IdP (no transaction): each deprovisioned user's identity is deleted, if accord created
   it. An identity accord adopted (one another system made and a platform administrator linked)
   is unlinked but kept: offboarding names an organization, not that identity, and G11 forbids
   deleting one without such a request (``identities_kept`` counts them; `accord reconcile`
   lists them). A delete the IdP refuses leaves that user disabled and linked, for reconcile
   to report (``identity_deletes_refused``); the others go on. An attempt that a failure
   stops (the IdP unavailable) keeps what it deleted, and the next one goes on from there.
   Their set-password tokens and unsent mail go in the claim too.
3. finalize: the deprovisioned users' links are removed (a refused delete's is kept and
   audited ``user.identity_delete_refused``), and ``organization.offboarded`` is audited with
   the report.

Every change is audited (and so in the change feed) in the transaction that makes it, as in
``deprovisioning.py``: the claim's ``membership.removed`` for each member,
``user.deprovisioned`` for each person leaving with the organization, and
``organization.deleted``. A consumer hears that those people lost their access when they
lost it, whatever the IdP answers afterwards: a refused delete, or an operation that gives up,
leaves them disabled, and the feed says so.

Creates into the organization that are still open when it goes fail at their finalize
(``organization_not_found``) and undo themselves; a retry of the offboarding with its key
replays the report. Nothing is compensated: like deprovisioning, giving access back would be
the worse failure.
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


async def delete_organization(
    accord: Context,
    organization_id: str | UUID,
    *,
    caller: Caller,
    keep_users: bool = False,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Offboard an organization. Returns its report: ``{"operation_id", "organization_id",
    "members_removed", "users_deprovisioned", "invitations_revoked", "tokens_revoked",
    "identities_kept", "identity_deletes_refused"}``."""
    caller.require_platform()
    org_id = parse_id(organization_id, "The organization id")
    return await operations.execute(
        accord,
        OperationKind.DELETE_ORGANIZATION,
        caller=caller,
        idempotency_key=idempotency_key,
        request={"organization_id": str(org_id), "keep_users": keep_users},
    )


class DeleteOrganization(Flow):
    kind = OperationKind.DELETE_ORGANIZATION

    async def claim(self, tx: Transaction, accord: Context, step: Step) -> OperationChanges:
        request = step.op.request
        org_id = UUID(request["organization_id"])
        org = await tx.organizations.get(org_id, lock=True)
        if org is None:
            raise errors.OrganizationNotFound(f"No organization {org_id}.")
        leavers = await tx.memberships.lock_leavers(org_id)
        report = {
            "organization_id": str(org_id),
            "slug": org.slug,
            "members_removed": await tx.memberships.count(org_id),
            "tokens_revoked": await tx.api_tokens.live_count(org_id),
            "invitations_revoked": await tx.invitations.revoke_pending(org_id),
        }
        departing = [] if request.get("keep_users") else await _retire(tx, accord, leavers)
        members = await tx.memberships.members(org_id)
        await tx.organizations.delete(org_id)  # its memberships and tokens go with it
        await _audit_claim(tx, step, members, departing, report)
        state = {"report": report, "departing": departing}
        return {"organization_id": org_id, "flow_state": state}

    async def ensure_remote(self, accord: Context, step: Step) -> OperationChanges:
        state = step.op.flow_state
        # What an earlier attempt finished before a failure stopped it is not asked again: one
        # flaky call in an organization of thousands costs one attempt, not the whole list.
        deleted: list[str] = list(state.get("deleted", []))
        refused: list[str] = list(state.get("refused", []))
        settled = {*deleted, *refused}
        for person in state["departing"]:
            user_id = person["user_id"]
            if not person["remote_id"] or _kept(person) or user_id in settled:
                continue
            try:
                await accord.idp.delete(person["remote_id"])  # idempotent: gone is fine
            except errors.RemoteRejected:
                refused.append(user_id)
            except Exception:
                step.progress = {**state, "deleted": deleted, "refused": refused}
                raise
            else:
                deleted.append(user_id)
            crashpoints.reach(accord.settings, CrashPoint.IDP_CALL_SENT)
        state = {**state, "deleted": deleted, "refused": refused}
        return {"remote_id": None, "created_remote": False, "flow_state": state}

    async def finalize(self, tx: Transaction, accord: Context, step: Step) -> dict[str, Any]:
        op = step.op
        refused = set(op.flow_state.get("refused", []))
        departing = op.flow_state["departing"]
        for person in departing:
            user_id = UUID(person["user_id"])
            if person["user_id"] not in refused:
                await tx.links.unlink_all(user_id)
                continue
            await tx.audit.record(  # its link is kept: reconcile reports it
                AuditEvent(
                    **audit_by(op.request),
                    action="user.identity_delete_refused",
                    subject_user_id=user_id,
                    subject_email=person["email"],
                    organization_id=op.organization_id,
                    operation_id=op.id,
                    data={"remote_id": person["remote_id"], "reason": "organization.deleted"},
                )
            )
        report = {
            **op.flow_state["report"],
            "users_deprovisioned": len(departing),
            "identities_kept": sum(1 for p in departing if _kept(p)),
            "identity_deletes_refused": sorted(refused),
        }
        await tx.audit.record(  # the deletion itself was audited (and announced) in the claim
            AuditEvent(
                **audit_by(op.request),
                action="organization.offboarded",
                organization_id=op.organization_id,
                operation_id=op.id,
                data=report,
            )
        )
        return report

    async def undo_remote(self, accord: Context, step: Step) -> bool:
        return False  # nothing was created

    async def undo_claim(self, tx: Transaction, accord: Context, step: Step) -> None:
        return None  # access stays cut (see the module docstring)


async def _audit_claim(
    tx: Transaction,
    step: Step,
    members: dict[UUID, Any],
    departing: list[dict[str, Any]],
    report: dict[str, Any],
) -> None:
    """Audit (and so announce in the change feed) what the claim changed, with the change:
    each membership gone, each person disabled (read after the deletion: their documents
    hold no membership of it), the organization deleted."""
    op = step.op
    by, org_id = audit_by(op.request), op.organization_id or UUID(op.request["organization_id"])
    reason = {"reason": "organization.deleted"}

    def event(action: str, user_id: UUID | None, email: str | None, **data: Any) -> AuditEvent:
        return AuditEvent(
            **by,
            action=action,
            subject_user_id=user_id,
            subject_email=email,
            organization_id=org_id,
            operation_id=op.id,
            data={**data, **reason},
        )

    deleted = {
        **report,
        "users_deprovisioned": len(departing),
        "identities_kept": sum(1 for p in departing if _kept(p)),
    }
    await tx.audit.record_many(  # one statement for the audit log, one for the feed
        [
            *(event("membership.removed", u, m.email) for u, m in sorted(members.items())),
            *(
                event(
                    "user.deprovisioned",
                    UUID(p["user_id"]),
                    p["email"],
                    remote_id=p["remote_id"],
                    identity_kept=_kept(p),
                )
                for p in departing
            ),
            event("organization.deleted", None, None, **deleted),
        ]
    )


async def _retire(tx: Transaction, accord: Context, user_ids: list[UUID]) -> list[dict[str, Any]]:
    """Deprovision, in the claim, the members who leave with the organization."""
    departing = []
    for user_id in user_ids:
        user = await tx.users.get(user_id)
        if user is None or user.status in (UserStatus.DISABLED, UserStatus.PROVISIONING):
            continue  # another operation owns that row's fate
        link = await tx.links.get(user_id, accord.idp.name)
        await tx.users.retire(user_id)
        # With access, its links and mail go now: a set-password link must not outlive it.
        await tx.one_time_tokens.delete_for_user(user_id)
        if user.email:
            await tx.outbox.delete_unsent(user.email)
        departing.append(
            {
                "user_id": str(user_id),
                "email": user.email,
                "remote_id": link.remote_id if link else None,
                "created_by_accord": bool(link and link.created_by_accord),
            }
        )
    return departing


def _kept(person: dict[str, Any]) -> bool:
    """Whether this departing user's identity stays in the IdP: one accord adopted."""
    return bool(person["remote_id"]) and not person["created_by_accord"]
