"""The HTTP API's request and response bodies.

Requests are strict: unknown fields are refused, every string is bounded and free of control
characters (PostgreSQL cannot store NUL, and nobody's name contains a tab). E-mail addresses are
normalized and checked by the services (``email_invalid``), one rule for every entry point.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from accord.domain.model import (
    CredentialMode,
    OperationKind,
    OperationState,
    OrganizationKind,
    OrganizationStatus,
    RecoveryPoint,
    RegistrationSource,
    Role,
    UserStatus,
)

NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"


def text(max_length: int, min_length: int = 1, **extra: Any) -> Any:
    """A bounded string without control characters."""
    return Annotated[
        str,
        StringConstraints(
            min_length=min_length, max_length=max_length, pattern=NO_CONTROL_CHARACTERS
        ),
        Field(**extra),
    ]


Email = text(320, json_schema_extra={"format": "email"}, description="Normalized by accord.")
Password = text(1024, description="Never stored or logged in plain text.")
FullName = text(200)
Permission = text(100)
OrganizationName = text(100)
DisplayName = text(200)
PlanType = text(50)
SetupToken = text(512)
AnyAddress = text(320, description="Not checked: the answer is the same for any text.")
SettingKey = text(100)
SettingValue = text(1000, min_length=0) | int | bool | None


class StrictBody(BaseModel):
    """A request body: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


# -- requests ------------------------------------------------------------------------------------


class NewMember(StrictBody):
    """A user to create in the organization named by the URL."""

    email: Email
    full_name: FullName
    role: Role = Role.ORG_USER
    permissions: list[Permission] = Field(default_factory=list, max_length=200)
    credential: CredentialMode | None = Field(
        None,
        description="`invite`: a set-password link by mail; `temp_password`: a generated "
        "password, returned once in the response (and in its idempotent replays). Omitted: "
        "`invite` for a new user; no change for an identity adopted with `adopt_existing`.",
    )
    adopt_existing: bool = Field(
        False,
        description="Platform tokens only. Link an account that already exists in the identity "
        "provider and that accord did not create; its password, name and metadata are left as "
        "they are (unless `credential` is given, which resets it and is audited). Without it, "
        "such an account answers 409 `identity_exists`.",
    )


class NewUser(NewMember):
    """A user to create in any organization (platform tokens only)."""

    organization_id: UUID


class NewRegistration(StrictBody):
    """A person signing up: one user and exactly one organization of their own."""

    email: Email
    password: Password
    full_name: FullName
    organization_name: OrganizationName | None = None
    source: RegistrationSource = RegistrationSource.WEB


class RegistrationVerification(StrictBody):
    """The token from an e-mail verification link."""

    token: SetupToken


class NewOrganization(StrictBody):
    """A team organization; its slug derives from ``name`` and must be unique."""

    name: OrganizationName
    display_name: DisplayName | None = None
    plan_type: PlanType = "trial"
    max_users: int = Field(10, ge=1, le=100_000)
    status: OrganizationStatus = OrganizationStatus.TRIAL
    settings: dict[SettingKey, SettingValue] = Field(default_factory=dict, max_length=50)


class PasswordSetupRequest(StrictBody):
    """Ask for a set-password link by mail."""

    # Any text: the answer is the same 202 whatever it is, so it tells nobody anything.
    email: AnyAddress


class PasswordSetup(StrictBody):
    """The token from a set-password link, and the chosen password."""

    token: SetupToken
    new_password: Password


class Login(StrictBody):
    """E-mail address and password (local identity provider)."""

    email: Email
    password: Password


class TemporaryPasswordReplacement(StrictBody):
    """A temporary password and the one that replaces it."""

    email: Email
    temporary_password: Password
    new_password: Password


# -- responses -----------------------------------------------------------------------------------


class Membership(BaseModel):
    """A user's role and permissions in one organization."""

    organization_id: UUID
    role: Role
    permissions: list[str]


class User(BaseModel):
    """A user and their memberships."""

    id: UUID
    email: str | None = Field(description="null once the user is deprovisioned.")
    full_name: str
    status: UserStatus
    is_platform_admin: bool
    require_password_change: bool
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    organizations: list[Membership]


class Organization(BaseModel):
    """An organization and its member count."""

    id: UUID
    slug: str
    display_name: str
    kind: OrganizationKind
    owner_user_id: UUID | None
    plan_type: str
    max_users: int
    status: OrganizationStatus
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    members: int
    version: int = Field(description="Grows by one with every change of the organization.")


class CreatedUser(BaseModel):
    """201: the user exists in the identity provider and in accord."""

    operation_id: UUID
    user: User
    reused_identity: bool = Field(
        description="True when an identity with this e-mail already existed in the identity "
        "provider and accord adopted it instead of creating one."
    )
    credential: CredentialMode | None = Field(
        description="The credential given; null when an adopted identity kept its own."
    )
    temporary_password: str | None = Field(
        None, description="Only with `credential: temp_password`. Shown once; store it now."
    )


class Registered(BaseModel):
    """201: the registrant and their own organization."""

    operation_id: UUID
    user: User
    organization: Organization
    reused_identity: bool


class VerificationSent(BaseModel):
    """202: the same answer for a new and for a taken address (it tells nobody which)."""

    status: Literal["verification_sent"]


class Deprovisioned(BaseModel):
    """The user is disabled everywhere, or (``removed_from_organization``) only removed from
    the caller's organization."""

    operation_id: UUID
    user_id: UUID
    status: UserStatus
    removed_from_organization: UUID | None = Field(
        None,
        description="Set when an organization token removed a user who belongs to another "
        "organization too, or whose identity accord did not create: only the membership in "
        "this organization was removed; the user and their identity stay.",
    )


class UserPage(BaseModel):
    """One page of users."""

    items: list[User]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class OrganizationList(BaseModel):
    """The organizations the caller may see."""

    items: list[Organization]


class OperationError(BaseModel):
    """Why an operation failed, or why it is waiting."""

    code: str
    message: str
    details: dict[str, Any] | None = None


class Operation(BaseModel):
    """A provisioning operation: its state and, once it succeeded, its result."""

    id: UUID
    kind: OperationKind
    state: OperationState
    recovery_point: RecoveryPoint
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    error: OperationError | None
    user_id: UUID | None
    organization_id: UUID | None
    result: dict[str, Any] | None = Field(
        None, description="The stored response of a succeeded operation (never its secrets)."
    )


class PendingOperation(BaseModel):
    """202: the operation continues in the background."""

    operation_id: UUID
    state: Literal["open"]
    code: str
    detail: str
    retry_after: int


class Accepted(BaseModel):
    """202: accepted; nothing more is said."""

    detail: str


class LoginResult(BaseModel):
    """A short-lived login token."""

    access_token: str = Field(description="An HS256 JWT signed by this server.")
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="Seconds until the token expires.")
    user: User


class Health(BaseModel):
    """The process is up."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """Whether the server can serve: its dependencies, one by one."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(description="database, migrations, idp: `ok` or the fault.")


class FieldError(BaseModel):
    """One invalid field."""

    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document (``application/problem+json``)."""

    type: str = Field(description="`urn:accord:problem:<code>`.")
    title: str = Field(description="The same for every occurrence of the code.")
    status: int
    detail: str = Field(description="What went wrong this time, for people.")
    code: str = Field(description="accord's stable, machine-readable error code.")
    request_id: str | None = Field(None, description="Quote it when reporting a problem.")
    errors: list[FieldError] | None = Field(None, description="With `invalid_input`: per field.")


class AuditPrincipal(BaseModel):
    """Who was authenticated: an API token (with its scope), a user, the public, or accord."""

    kind: Literal["token", "user", "public", "system", "unrecorded"] = Field(
        description="`unrecorded`: an event from before principals were recorded (its `actor` "
        "is what the caller claimed then)."
    )
    token_id: UUID | None = None
    scope: str | None = Field(
        default=None, description="A token's scope: `platform` or its organization's id."
    )
    user_id: UUID | None = None
    name: str | None = Field(default=None, description="A system principal: `cli:<os user>`…")


class AuditEventOut(BaseModel):
    """One entry of the audit trail."""

    id: int
    at: datetime
    action: str
    actor: str = Field(description="The principal's label (`token:<id>`, `user:<id>`, …).")
    principal: AuditPrincipal
    claimed_actor: str | None = Field(
        description="Whom the caller said it acted for (`X-Acting-User`): a claim, unverified."
    )
    subject_user_id: UUID | None
    subject_email: str | None
    organization_id: UUID | None
    operation_id: UUID | None
    data: dict[str, Any]


class AuditEventPage(BaseModel):
    """One page of audit events, oldest first."""

    items: list[AuditEventOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class OrganizationDeleted(BaseModel):
    """What offboarding an organization did (``services/offboarding.py``)."""

    operation_id: UUID
    organization_id: UUID
    slug: str
    members_removed: int
    users_deprovisioned: int = Field(
        description="Members who had no other organization, deprovisioned with it (0 with "
        "`keep_users=true`)."
    )
    invitations_revoked: int
    tokens_revoked: int
    identities_kept: int = Field(
        description="Deprovisioned users whose identity accord did not create: unlinked, but "
        "kept in the identity provider (other systems may use it)."
    )
    identity_deletes_refused: list[UUID] = Field(
        description="Deprovisioned users whose identity the provider refused to delete: they "
        "stay disabled and linked, and `accord reconcile` reports them."
    )


# -- invitations ---------------------------------------------------------------------------------

InvitationToken = text(512)


class NewInvitation(StrictBody):
    """A person to invite into the organization named by the URL."""

    email: Email
    role: Role = Role.ORG_USER
    permissions: list[Permission] = Field(default_factory=list, max_length=200)
    expires_in_hours: float = Field(72, gt=0, le=720, description="At most 30 days.")


class InvitationAcceptance(StrictBody):
    """The token from an invitation link; a new person's name and chosen password."""

    token: InvitationToken
    full_name: FullName = Field(description="Ignored for a person who has an account already.")
    password: Password | None = Field(
        None,
        description="Required for a new person (the password strength rules apply); ignored "
        "for one who has an account already: they keep signing in as before.",
    )


class Invitation(BaseModel):
    """An invitation (its link is only ever mailed)."""

    id: UUID
    organization_id: UUID
    email: str
    role: Role
    permissions: list[str]
    status: Literal["pending", "accepted", "revoked", "expired"]
    expires_at: datetime
    invited_by: str
    accepted_user_id: UUID | None
    created_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None


class InvitationPage(BaseModel):
    """One page of invitations."""

    items: list[Invitation]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


# -- memberships, organization changes, the mailbox -----------------------------------------------


class MemberChange(StrictBody):
    """The role and permissions a member has in the organization (replacing what they had)."""

    role: Role = Role.ORG_USER
    permissions: list[Permission] = Field(default_factory=list, max_length=200)


class Member(BaseModel):
    """A member of an organization."""

    user_id: UUID
    organization_id: UUID
    email: str
    role: Role
    permissions: list[str]


class MemberPage(BaseModel):
    """One page of an organization's members, ordered by user id."""

    items: list[Member]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class InvitedOrganization(BaseModel):
    id: UUID
    name: str


class InvitationPreview(BaseModel):
    """What an invitation link's page shows."""

    organization: InvitedOrganization
    inviter: str
    email: str
    role: Role
    status: Literal["pending", "accepted", "revoked", "expired"]
    expires_at: datetime


class AcceptedInvitation(BaseModel):
    """The accepted invitation and its member: the same answer for every acceptance."""

    invitation: Invitation
    user: User
    new_user: bool = Field(description="Whether accepting created the account.")


class MemberRemoved(BaseModel):
    """The membership is gone."""

    organization_id: UUID
    user_id: UUID
    memberships_left: int = Field(description="The user's memberships in other organizations.")
    deprovision_operation_id: UUID | None = Field(
        description="With `ACCORD_LAST_MEMBERSHIP_REMOVED=deprovision`, when this was the user's "
        "last membership: the deprovision operation that was started (`/api/operations/{id}`)."
    )


class OrganizationPatch(StrictBody):
    """The fields to change; omitted ones stay as they are."""

    display_name: DisplayName | None = None
    max_users: int | None = Field(None, ge=1, le=100_000)
    status: OrganizationStatus | None = None


class MailSummary(BaseModel):
    """A message in the embedded mailbox."""

    id: int
    to: str
    subject: str
    created_at: datetime
    links: list[str] = Field(description="The http(s) links in its text, in order.")


class MailMessage(MailSummary):
    """A message with its text."""

    body: str


class MailPage(BaseModel):
    """One page of the mailbox, newest first."""

    items: list[MailSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next (older) page; null on the last page."
    )


# -- profile changes (services/profile.py) -------------------------------------------------------


class UserChange(StrictBody):
    """What to change of a user; an omitted (or null) field stays as it is."""

    email: Email | None = Field(
        None,
        description="A new address: changed in the identity provider and in accord as one "
        "operation; the old address gets a notice.",
    )
    full_name: FullName | None = None
    is_platform_admin: bool | None = Field(None, description="Platform tokens only.")


class UpdatedUser(BaseModel):
    """200: the user as changed (or as they were, when nothing had to change)."""

    operation_id: UUID | None = Field(
        description="The change's operation; null when nothing was asked of the identity "
        "provider (no change, or only `is_platform_admin`)."
    )
    user: User


ChangeToken = text(1024)


class EmailChangeRequest(StrictBody):
    """A signed-in person's new address (built-in identity provider)."""

    new_email: Email


class EmailChangeConfirmation(StrictBody):
    """The token from an e-mail change link."""

    token: ChangeToken


class SuspensionResult(BaseModel):
    """The user after a suspension or reactivation (``status`` says which)."""

    operation_id: UUID
    user_id: UUID
    user: User
