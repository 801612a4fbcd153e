"""Ensuring an IdP user exists for an operation: look up, adopt, or create; never twice."""

from __future__ import annotations

from datetime import datetime

from accord.domain import errors
from accord.domain.ports import KeepsTemporaryPasswords, NewRemoteUser, RemoteUser
from accord.domain.records import OperationRecord
from accord.services import crashpoints
from accord.services.context import Context
from accord.services.crashpoints import CrashPoint


async def ensure_identity(
    accord: Context, op: OperationRecord, *, email: str, full_name: str, password: str | None
) -> tuple[RemoteUser, bool]:
    """The IdP user for ``op``'s e-mail, and whether this operation created it.

    Exact lookup first (a retry, or an identity left by older code, is found and adopted). A
    create that conflicts, or whose answer was lost, is resolved by looking up again, never by a
    second blind create. An identity that carries this operation's user id was created by an
    earlier attempt of this very operation, so it counts as created, not adopted, and is given
    ``password`` again.
    """
    assert op.user_id is not None, "an operation ensures an identity only after its claim"
    idp = accord.idp
    remote = await idp.find_by_email(email)
    if remote is None:
        try:
            created = await idp.create(NewRemoteUser(op.user_id, email, full_name, password))
            crashpoints.reach(accord.settings, CrashPoint.IDP_CALL_SENT)
            return created, True
        except (errors.RemoteConflict, errors.OutcomeUnknown):
            remote = await idp.find_by_email(email)
        if remote is None:
            raise errors.ProviderUnavailable(
                "The identity provider has not confirmed the new user yet; will look again."
            )
    ours = remote.accord_user_id == str(op.user_id)
    if ours and password is not None:
        # An earlier attempt made this user, but not necessarily its password: Keycloak takes it
        # in a second request, and a lost answer or a crash can fall between the two. Set it
        # again (idempotent), or the account would be active with no password.
        await idp.update(remote.remote_id, password=password)
    return remote, ours


async def set_credential(
    accord: Context, remote_id: str, *, password: str, temporary_until: datetime | None
) -> None:
    """Give the IdP user ``password``; a generated one is stored as such where the IdP can."""
    idp = accord.idp
    if temporary_until is not None and isinstance(idp, KeepsTemporaryPasswords):
        await idp.set_temporary_password(remote_id, password, temporary_until)
    else:
        await idp.update(remote_id, password=password)
