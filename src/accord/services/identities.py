"""Ensuring an IdP user exists for an operation: look up, adopt, or create; never twice."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from accord.adapters.db.operations import OperationRecord
from accord.domain import errors
from accord.domain.ports import NewRemoteUser, RemoteUser
from accord.services import crashpoints
from accord.services.crashpoints import CrashPoint

if TYPE_CHECKING:
    from datetime import datetime

    from accord.bootstrap import Accord


@runtime_checkable
class KeepsTemporaryPasswords(Protocol):
    """An IdP that can store a generated password as such (the local IdP: SHA-256, expiring)."""

    async def set_temporary_password(
        self, remote_id: str, password: str, expires_at: datetime
    ) -> None: ...


async def ensure_identity(
    accord: Accord, op: OperationRecord, *, email: str, full_name: str, password: str | None
) -> tuple[RemoteUser, bool]:
    """The IdP user for ``op``'s e-mail, and whether this operation created it.

    Exact lookup first (a retry, or an identity left by older code, is found and adopted). A
    create that conflicts, or whose answer was lost, is resolved by looking up again, never by a
    second blind create. An identity that carries this operation's user id was created by an
    earlier attempt of this very operation, so it counts as created, not adopted.
    """
    idp = accord.idp
    remote = await idp.find_by_email(email)
    if remote is None:
        try:
            created = await idp.create(NewRemoteUser(op.user_id, email, full_name, password))
            crashpoints.reach(accord, CrashPoint.IDP_CALL_SENT)
            return created, True
        except (errors.RemoteConflict, errors.OutcomeUnknown):
            remote = await idp.find_by_email(email)
        if remote is None:
            raise errors.ProviderUnavailable(
                "The identity provider has not confirmed the new user yet; will look again."
            )
    return remote, remote.accord_user_id == str(op.user_id)


async def set_credential(
    accord: Accord, remote_id: str, *, password: str, temporary_until: datetime | None
) -> None:
    """Give the IdP user ``password``; a generated one is stored as such where the IdP can."""
    idp = accord.idp
    if temporary_until is not None and isinstance(idp, KeepsTemporaryPasswords):
        await idp.set_temporary_password(remote_id, password, temporary_until)
    else:
        await idp.update(remote_id, password=password)
