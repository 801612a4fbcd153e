"""The vocabulary of accord: states, roles, kinds. Values are stored as text in PostgreSQL,
where check constraints (adapters/db/tables.py) hold them to these sets."""

from __future__ import annotations

from enum import StrEnum


class UserStatus(StrEnum):
    """A user row's life: claimed, then waiting for a password, then in use, then removed."""

    PROVISIONING = "provisioning"  # claimed by an open operation; the IdP user may not exist yet
    PENDING = "pending"  # IdP user exists; the person has not set a password yet
    ACTIVE = "active"
    SUSPENDED = "suspended"  # an admin blocked it: the IdP refuses its sign-in, rows stay
    DISABLED = "disabled"  # deprovisioned: no IdP user, no memberships


# The statuses of a user who may sign in.
LIVE_STATUSES = (UserStatus.PENDING, UserStatus.ACTIVE)


class Role(StrEnum):
    ORG_ADMIN = "org_admin"
    ORG_USER = "org_user"


class OrganizationKind(StrEnum):
    PERSONAL = "personal"  # made by a registration; at most one per owner
    TEAM = "team"


class OrganizationStatus(StrEnum):
    TRIAL = "trial"
    ACTIVE = "active"
    SUSPENDED = "suspended"


class CredentialMode(StrEnum):
    INVITE = "invite"  # a single-use set-password link, by mail
    TEMP_PASSWORD = "temp_password"  # a generated password, returned once


class RegistrationSource(StrEnum):
    WEB = "web"
    IDE = "ide"
    API = "api"


class OperationKind(StrEnum):
    CREATE_USER = "create_user"
    REGISTER = "register"
    DEPROVISION = "deprovision"
    DELETE_ORGANIZATION = "delete_organization"
    ACCEPT_INVITATION = "accept_invitation"
    CHANGE_EMAIL = "change_email"  # a profile change (e-mail, name) across both systems
    SUSPEND = "suspend"
    REACTIVATE = "reactivate"
    CREATE_WEBHOOK = "create_webhook"  # no IdP phase: an operation so a retried key replays


class OperationState(StrEnum):
    OPEN = "open"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RecoveryPoint(StrEnum):
    """The last phase of an operation that committed. See services/operations.py."""

    CLAIMED = "claimed"
    IDP_ENSURED = "idp_ensured"
    COMPENSATING = "compensating"
    FINISHED = "finished"


class TokenPurpose(StrEnum):
    PASSWORD_SETUP = "password_setup"
    EMAIL_CHANGE = "email_change"  # a self-service e-mail change, sent to the new address


class TokenScope(StrEnum):
    PLATFORM = "platform"
    ORGANIZATION = "organization"
    SCIM = "scim"  # an organization's SCIM client: /scim/v2 only, never the admin API


TERMINAL_STATES = frozenset({OperationState.SUCCEEDED, OperationState.FAILED})


class InvitationStatus(StrEnum):
    """An invitation's life: it holds a seat while ``pending``; the other states are final."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    EXPIRED = "expired"
