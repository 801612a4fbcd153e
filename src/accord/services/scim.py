"""SCIM users: what an organization's Okta or Entra ID asks of accord, through the engine.

SCIM is one more entry point, never a second writer: a create is the engine's create (the
organization is the tenant, so the IdP identity, the seat count, idempotency, crash safety and
the audit trail come with it), ``active`` is the lifecycle's suspension and reactivation, a
name or e-mail change is the profile change, and a delete is the organization caller's
deprovisioning (membership removal or deprovisioning, by the lifecycle rules). This module adds
only what SCIM has and accord has not: a row per userName in ``scim_users`` (domain/scim_store.py)
with the externalId and the SCIM-only attributes, and the rules below.

- **A retried create makes no second user.** The IdP sends no Idempotency-Key. The userName's
  row is claimed first, with a creation key derived from the tenant and the externalId (else
  the userName): a create with another creation key is another person (409), one with the
  same is the same create sent again (after a timeout, or concurrently), and uses the row's
  Idempotency-Key to rejoin the first operation: the same user, answered 201 again while the
  engine keeps the answer (24 h).
- **userName is unique within the organization**, case-insensitively: ``ScimUserNameTaken``.
- **An existing accord user** that a SCIM client pushes for the first time is linked only if
  it is a member of the SCIM client's organization and its identity is one accord made;
  anything else is refused (``EmailAlreadyExists``) with what the admin can do.
- **Tenancy (G10).** Every function takes the SCIM client's caller and works in its
  organization only; a user of another organization is missing (``UserNotFound``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.emails import normalize_email
from accord.domain.model import UserStatus
from accord.domain.records import UserRecord
from accord.domain.scim_store import ScimUserRecord, ScimUserWrite, user_name_key
from accord.domain.store import Transaction
from accord.services import deprovisioning, profile, provisioning, suspension
from accord.services.context import Context
from accord.services.ids import parse_id

MAX_USER_NAME_LENGTH = 256
MAX_EXTERNAL_ID_LENGTH = 256


@dataclass(frozen=True)
class ScimUserState:
    """What a SCIM client wants a user to be (a POST or PUT body, or a patched resource)."""

    user_name: str
    email: str  # becomes accord's e-mail address
    full_name: str
    active: bool = True
    external_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)  # the SCIM-only ones, stored


@dataclass(frozen=True)
class ScimUser:
    """A SCIM client's user: its SCIM row and accord's user."""

    record: ScimUserRecord
    user: UserRecord

    @property
    def active(self) -> bool:
        return self.user.status != UserStatus.SUSPENDED


def organization_of(caller: Caller) -> UUID:
    """The SCIM client's organization: the tenant every SCIM read and write is scoped to."""
    if caller.organization_id is None:  # a SCIM client is always one organization's
        raise errors.Forbidden("SCIM is answered for an organization's SCIM token only.")
    return caller.organization_id


def _checked(state: ScimUserState) -> ScimUserState:
    user_name = state.user_name.strip()
    if not user_name or len(user_name) > MAX_USER_NAME_LENGTH:
        raise errors.InvalidInput(f"userName must be 1 to {MAX_USER_NAME_LENGTH} characters.")
    if state.external_id is not None and len(state.external_id) > MAX_EXTERNAL_ID_LENGTH:
        raise errors.InvalidInput(f"externalId is longer than {MAX_EXTERNAL_ID_LENGTH}.")
    return ScimUserState(
        user_name=user_name,
        email=normalize_email(state.email),
        full_name=provisioning.clean_name(state.full_name),
        active=state.active,
        external_id=state.external_id or None,
        attributes=state.attributes,
    )


def _write(state: ScimUserState) -> ScimUserWrite:
    return ScimUserWrite(state.user_name, state.external_id, state.attributes)


def creation_key(organization_id: UUID, state: ScimUserState) -> str:
    """Who a SCIM create is for: the same person pushed again has the same one."""
    basis = (
        f"externalId\n{state.external_id}"
        if state.external_id
        else f"userName\n{user_name_key(state.user_name)}"
    )
    return "scim-" + hashlib.sha256(f"{organization_id}\n{basis}".encode()).hexdigest()


def taken(user_name: str) -> errors.ScimUserNameTaken:
    return errors.ScimUserNameTaken(
        f"A user with the userName {user_name!r} already exists in this organization."
    )


# -- reads ---------------------------------------------------------------------------------------


async def _live(tx: Transaction, record: ScimUserRecord | None) -> ScimUser | None:
    """The row with its user, if the user is still a live member of the row's organization."""
    if record is None or record.user_id is None:
        return None
    user = await tx.users.get(record.user_id)
    member = await tx.memberships.get(record.user_id, record.organization_id)
    if user is None or member is None or user.status == UserStatus.DISABLED:
        return None
    return ScimUser(record, user)


async def provisioned(tx: Transaction, organization_id: UUID, user_id: UUID) -> ScimUser | None:
    """The organization's SCIM user of that accord id, if it is one and still a live member."""
    return await _live(tx, await tx.scim_users.by_user(organization_id, user_id))


async def get_scim_user(accord: Context, user_id: str | UUID, *, caller: Caller) -> ScimUser:
    """One of the caller's SCIM users; UserNotFound for anyone else (G10)."""
    org_id = organization_of(caller)
    uid = parse_id(user_id, "The user id")
    async with accord.store.transaction() as tx:
        found = await _live(tx, await tx.scim_users.by_user(org_id, uid))
    if found is None:
        raise errors.UserNotFound(f"No user {uid}.")
    return found


async def list_scim_users(accord: Context, *, caller: Caller) -> list[ScimUser]:
    """Every SCIM user of the caller's organization, oldest first (a stable order)."""
    org_id = organization_of(caller)
    async with accord.store.transaction() as tx:
        rows = await tx.scim_users.members(org_id)
        found = [await _live(tx, row) for row in rows]
    return [user for user in found if user is not None]


async def find_scim_users(accord: Context, user_name: str, *, caller: Caller) -> list[ScimUser]:
    """The caller's SCIM user with that userName (compared case-insensitively), if any: the
    lookup Okta and Entra send before every create, answered from the unique index."""
    org_id = organization_of(caller)
    async with accord.store.transaction() as tx:
        found = await _live(tx, await tx.scim_users.by_user_name(org_id, user_name))
    return [found] if found is not None else []


# -- create --------------------------------------------------------------------------------------


async def create_scim_user(
    accord: Context, state: ScimUserState, *, caller: Caller
) -> tuple[ScimUser, bool]:
    """Create (or, for a retry, find again) a SCIM user; returns it and whether it was linked
    to an existing accord user. Raises ``OperationPending`` while the IdP is unavailable."""
    org_id = organization_of(caller)
    state = _checked(state)
    row = await _claim(accord, org_id, creation_key(org_id, state), state)
    if row.creation_key != creation_key(org_id, state):
        raise taken(state.user_name)
    # One key per claimed row: a retry of this create rejoins its operation; once the user is
    # deleted and the row with it, the same person pushed again is a new create.
    key = f"scim-create-{row.id}"
    linked = await _link_existing(accord, caller, row, state, key)
    if linked is not None:
        return linked, True
    try:
        result = await provisioning.create_user(
            accord,
            provisioning.NewUser(
                email=state.email, full_name=state.full_name, organization_id=org_id
            ),
            caller=caller,
            idempotency_key=key,
        )
    except (errors.OperationPending, errors.OperationInProgress):
        raise  # the row stays claimed for the operation that goes on
    except errors.IdempotencyKeyReused:
        raise taken(state.user_name) from None
    except errors.AccordError:
        await _release(accord, row)
        raise
    created = await _bind(accord, row, UUID(result["user"]["id"]))
    if not state.active:
        return await _set_active(accord, created, False, caller), False
    return created, False


async def _claim(accord: Context, org_id: UUID, key: str, state: ScimUserState) -> ScimUserRecord:
    """The userName's row: a new unbound one, or the one a create of this key (or another
    create: the caller tells them apart by the key) claimed before."""
    async with accord.store.transaction() as tx:
        row = await tx.scim_users.by_user_name(org_id, state.user_name)
        if row is not None and row.user_id is not None and await _live(tx, row) is None:
            await tx.scim_users.delete(row.id)  # its user left the organization: the name is free
            row = None
        if row is None:
            row = await tx.scim_users.claim(
                row_id=uuid4(), organization_id=org_id, creation_key=key, write=_write(state)
            )
    if row is None:  # a concurrent create claimed it first: read what it claimed
        async with accord.store.transaction() as tx:
            row = await tx.scim_users.by_user_name(org_id, state.user_name)
    if row is None:  # claimed and released meanwhile: the caller's retry claims it
        raise errors.OperationInProgress("Another create of this userName is running; retry.")
    return row


async def _link_existing(
    accord: Context, caller: Caller, row: ScimUserRecord, state: ScimUserState, key: str
) -> ScimUser | None:
    """The trust rules for an e-mail accord has a user for already, when no create of this key
    made it: link a member of this organization whose identity accord made; refuse the rest."""
    org_id = row.organization_id
    async with accord.store.transaction() as tx:
        if await tx.operations.find_by_key(caller.key, key) is not None:
            return None  # this create ran before: the engine replays or resumes it
        if row.user_id is not None:  # made long ago (its answer forgotten): a second create
            raise taken(state.user_name)
        user = await tx.users.by_email(state.email)
        if user is None:
            return None
        refusal = await _refusal(tx, accord, org_id, user, row)
        if refusal is None:
            await tx.scim_users.bind(row.id, user.id)
            linked = await _live(tx, await tx.scim_users.by_user(org_id, user.id))
            assert linked is not None
            return linked
    await _release(accord, row)
    raise errors.EmailAlreadyExists(refusal)


async def _refusal(
    tx: Transaction, accord: Context, org_id: UUID, user: UserRecord, row: ScimUserRecord
) -> str | None:
    """Why an existing user cannot be linked to this SCIM row; None if it can."""
    email = user.email
    if await tx.memberships.get(user.id, org_id) is None:
        return (
            f"accord already has a user with the e-mail address {email} who is not a member of "
            "this organization, and a SCIM client cannot take over an account of another "
            "organization. Ask the application's administrator to add that user to this "
            "organization (then push again), or push the person with another e-mail address."
        )
    link = await tx.links.get(user.id, accord.idp.name)
    if link is None or not link.created_by_accord:
        return (
            f"The user with the e-mail address {email} signs in with an account that accord did "
            "not create, and accord does not hand it to a SCIM client. Ask the application's "
            "administrator to deprovision or re-create that user, then push again."
        )
    other = await tx.scim_users.by_user(org_id, user.id)
    if other is not None and other.id != row.id:
        return (
            f"The user with the e-mail address {email} is already provisioned by this "
            f"organization's SCIM client as {other.user_name!r}; update that user instead."
        )
    return None


async def _release(accord: Context, row: ScimUserRecord) -> None:
    """Give up a claimed row that no user was bound to."""
    async with accord.store.transaction() as tx:
        current = await tx.scim_users.by_user_name(row.organization_id, row.user_name)
        if current is not None and current.id == row.id and current.user_id is None:
            await tx.scim_users.delete(row.id)


async def _bind(accord: Context, row: ScimUserRecord, user_id: UUID) -> ScimUser:
    async with accord.store.transaction() as tx:
        await tx.scim_users.bind(row.id, user_id)
        found = await _live(tx, await tx.scim_users.by_user(row.organization_id, user_id))
    if found is None:  # removed from the organization between the create and now
        raise errors.UserNotFound(f"No user {user_id}.")
    return found


# -- replace, delete -----------------------------------------------------------------------------


async def replace_scim_user(
    accord: Context, user_id: str | UUID, state: ScimUserState, *, caller: Caller
) -> ScimUser:
    """Make the user what ``state`` says: the name and e-mail by the profile change, ``active``
    by suspension or reactivation, the SCIM-only attributes in the row."""
    current = await get_scim_user(accord, user_id, caller=caller)
    state = _checked(state)
    org_id, uid = current.record.organization_id, current.user.id
    async with accord.store.transaction() as tx:
        other = await tx.scim_users.by_user_name(org_id, state.user_name)
    if other is not None and other.id != current.record.id:
        raise taken(state.user_name)
    email = state.email if state.email != current.user.email else None
    name = state.full_name if state.full_name != current.user.full_name else None
    if email is not None or name is not None:
        change = profile.ProfileChange(email=email, full_name=name)
        await profile.update_user(accord, uid, change, caller=caller)
    if state.active != current.active:
        await _set_active(accord, current, state.active, caller)
    async with accord.store.transaction() as tx:
        if not await tx.scim_users.replace(current.record.id, _write(state)):
            raise taken(state.user_name)
    return await get_scim_user(accord, uid, caller=caller)


async def _set_active(accord: Context, user: ScimUser, active: bool, caller: Caller) -> ScimUser:
    uid = user.user.id
    if active:
        await suspension.reactivate_user(accord, uid, caller=caller)
    else:
        await suspension.suspend_user(accord, uid, caller=caller)
    return await get_scim_user(accord, uid, caller=caller)


async def delete_scim_user(accord: Context, user_id: str | UUID, *, caller: Caller) -> None:
    """DELETE: the organization caller's deprovisioning (its membership removed, and the user
    deprovisioned where the lifecycle rules say so), then the SCIM row and its group places."""
    current = await get_scim_user(accord, user_id, caller=caller)
    await deprovisioning.deprovision_user(accord, current.user.id, caller=caller)
    async with accord.store.transaction() as tx:
        await tx.scim_users.delete(current.record.id)
        await tx.scim_groups.drop_member(current.record.organization_id, current.user.id)
