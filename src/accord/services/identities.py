"""Ensuring an IdP user exists for an operation: look up, adopt, or create; never twice.

Whose identity is it? accord stamps every identity it creates with the accord user id
(Auth0: ``user_id`` ``auth0|<hex of the id>``; Supabase: the id; Keycloak: the
``accord_user_id`` attribute; the local IdP: its ``accord_user_id`` column). An identity is

- ``created``: it carries this operation's user id (this operation, or an earlier attempt of
  it, made it);
- ``own``: it carries the id of another user row accord keeps for this very e-mail (a
  deprovisioned user whose IdP delete never happened), or the id an earlier operation claimed
  for it (a row removed since): accord made it, so it is adopted automatically (the retry and
  ghost-create path);
- ``foreign``: anything else (no stamp, or a stamp accord does not know for this e-mail):
  another system made it, and accord never takes it over on its own.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from accord.domain import errors, secrets
from accord.domain.ports import KeepsTemporaryPasswords, NewRemoteUser, RemoteUser, RevokesPasswords
from accord.domain.records import OperationRecord
from accord.services import crashpoints
from accord.services.context import Context
from accord.services.crashpoints import CrashPoint


class Origin(StrEnum):
    """Who made the IdP user an operation found or created (see the module docstring)."""

    CREATED = "created"
    OWN = "own"
    FOREIGN = "foreign"


async def ensure_identity(
    accord: Context, op: OperationRecord, *, email: str, full_name: str, password: str | None
) -> tuple[RemoteUser, Origin]:
    """The IdP user for ``op``'s e-mail, and who made it.

    Exact lookup first (a retry, or an identity left by older code, is found). A create that
    conflicts, or whose answer was lost, is resolved by looking up again, never by a second
    blind create. Nothing is written to an existing identity here, except ``password`` to one
    an earlier attempt of this very operation created: the caller decides what any other
    existing identity may have.
    """
    assert op.user_id is not None, "an operation ensures an identity only after its claim"
    idp = accord.idp
    remote = await idp.find_by_email(email)
    if remote is None:
        try:
            created = await idp.create(NewRemoteUser(op.user_id, email, full_name, password))
            crashpoints.reach(accord.settings, CrashPoint.IDP_CALL_SENT)
            return created, Origin.CREATED
        except (errors.RemoteConflict, errors.OutcomeUnknown):
            remote = await idp.find_by_email(email)
        if remote is None:
            raise errors.ProviderUnavailable(
                "The identity provider has not confirmed the new user yet; will look again."
            )
    origin = await origin_of(accord, op, remote, email)
    if origin is Origin.CREATED and password is not None:
        # An earlier attempt made this user, but not necessarily its password: Keycloak takes it
        # in a second request, and a lost answer or a crash can fall between the two. Set it
        # again (idempotent), or the account would be active with no password.
        await idp.update(remote.remote_id, password=password)
    return remote, origin


async def origin_of(accord: Context, op: OperationRecord, remote: RemoteUser, email: str) -> Origin:
    """Whether ``remote`` was made by this operation, by accord for this e-mail, or elsewhere."""
    stamp = remote.accord_user_id
    if stamp is None:
        return Origin.FOREIGN
    if stamp == str(op.user_id):
        return Origin.CREATED
    try:
        stamped = UUID(stamp)
    except ValueError:
        return Origin.FOREIGN
    async with accord.store.transaction() as tx:
        row = await tx.users.get(stamped)
        if row is not None and email in (row.email, row.former_email):
            return Origin.OWN
        if await tx.operations.claimed_for(stamped, email):  # its row was removed since
            return Origin.OWN
    return Origin.FOREIGN


async def set_credential(
    accord: Context, remote_id: str, *, password: str, temporary_until: datetime | None
) -> None:
    """Give the IdP user ``password``; a generated one is stored as such where the IdP can."""
    idp = accord.idp
    if temporary_until is not None and isinstance(idp, KeepsTemporaryPasswords):
        await idp.set_temporary_password(remote_id, password, temporary_until)
    else:
        await idp.update(remote_id, password=password)


async def revoke_credential(accord: Context, remote_id: str) -> None:
    """Leave the IdP user with no password anyone knows (an invitation: the person sets one).

    Where the IdP can hold no password, none; elsewhere a random one, which the vendor hashes
    on its side: accord never spends a password hash on a secret nobody will type (G9).
    """
    idp = accord.idp
    if isinstance(idp, RevokesPasswords):
        await idp.revoke_password(remote_id)
    else:
        await idp.update(remote_id, password=secrets.new_token())
