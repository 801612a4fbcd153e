"""accord's error hierarchy: one root, a stable machine-readable ``code`` on every class.

Every error class of accord is defined here and listed in ``CATALOGUE``, each with a code of its
own, so the published catalogue (``error_codes()``) is the same whatever else was imported.
The entrypoints map codes to HTTP statuses or exit codes; nothing below them knows about either.
The class docstring is the default message, so every error reads well without arguments.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AccordError(Exception):
    """Something went wrong in accord."""

    code: ClassVar[str] = "accord_error"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or (self.__doc__ or self.code).strip()
        self.details = details
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        """The error as a JSON-ready mapping: code, message and details."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


# -- input -------------------------------------------------------------------------------------


class InvalidInput(AccordError):
    """The request is not valid."""

    code = "invalid_input"


class EmailInvalid(InvalidInput):
    """The e-mail address is not valid."""

    code = "email_invalid"


class EmailConfusable(EmailInvalid):
    """The e-mail address mixes scripts with look-alike letters; type it in one script."""

    code = "email_confusable"


class InvalidActingUser(InvalidInput):
    """The acting user must be 1 to 200 printable characters (no control or bidi ones)."""

    code = "invalid_acting_user"


class PasswordRejected(InvalidInput):
    """The password does not meet the password policy."""

    code = "password_rejected"


class ConfigurationError(AccordError):
    """accord's configuration is invalid."""

    code = "configuration_invalid"


# -- state conflicts ---------------------------------------------------------------------------


class EmailAlreadyExists(AccordError):
    """A user with this e-mail address already exists."""

    code = "email_exists"


class ScimUserNameTaken(AccordError):
    """Another user of this organization's SCIM client has that userName."""

    code = "scim_user_name_taken"


class ScimGroupNameTaken(AccordError):
    """Another group of this organization's SCIM client has that displayName."""

    code = "scim_group_name_taken"


class ScimGroupNotFound(AccordError):
    """No such group in this organization."""

    code = "scim_group_not_found"


class IdentityExists(AccordError):
    """The identity provider has an account with this e-mail that accord did not create."""

    code = "identity_exists"


class OrganizationNotFound(AccordError):
    """No such organization."""

    code = "organization_not_found"


class OrganizationExists(AccordError):
    """An organization with this name already exists."""

    code = "organization_exists"


class OrganizationFull(AccordError):
    """The organization has reached its member limit."""

    code = "organization_full"


class UserNotFound(AccordError):
    """No such user."""

    code = "user_not_found"


class OperationNotFound(AccordError):
    """No such operation."""

    code = "operation_not_found"


class WebhookNotFound(AccordError):
    """No such webhook endpoint."""

    code = "webhook_not_found"


class WebhookTargetRefused(AccordError):
    """The webhook's URL may not be delivered to (not http(s), or a private address)."""

    code = "webhook_target_refused"


class ApiTokenNotFound(AccordError):
    """No such API token."""

    code = "api_token_not_found"


class Forbidden(AccordError):
    """The caller may not do this."""

    code = "forbidden"


class Unauthenticated(AccordError):
    """Authentication is required: send a valid API token."""

    code = "unauthenticated"


class InvalidCredentials(AccordError):
    """The e-mail address or password is wrong."""

    code = "invalid_credentials"


class TokenInvalid(AccordError):
    """The link is invalid, already used or expired: request a new one."""

    code = "token_invalid"


class PasswordChangeRequired(AccordError):
    """The temporary password must be replaced before signing in."""

    code = "password_change_required"


class TooManyAttempts(AccordError):
    """Too many failed sign-in attempts: wait for the time the Retry-After header gives, or
    reset the password by mail."""

    code = "too_many_attempts"

    def __init__(self, message: str | None = None, *, retry_after: float = 60.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyRequests(AccordError):
    """Too many requests from this address: wait for the time the Retry-After header gives."""

    code = "too_many_requests"

    def __init__(self, message: str | None = None, *, retry_after: float = 60.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PasswordTooWeak(PasswordRejected):
    """The password is too easy to guess: choose a longer one, e.g. a few unrelated words."""

    code = "password_too_weak"


class ReconcileRunning(AccordError):
    """Another reconcile is running against this identity provider: wait for it to finish."""

    code = "reconcile_running"


class LastAdmin(AccordError):
    """A team organization keeps at least one org_admin: make another member org_admin first."""

    code = "last_admin"


class OwnerMembership(AccordError):
    """The owner of a personal organization stays its org_admin member."""

    code = "owner_membership"


class MembershipNotFound(AccordError):
    """The user is not a member of this organization."""

    code = "membership_not_found"


class LimitBelowUsage(AccordError):
    """The member limit cannot go below the seats already taken."""

    code = "limit_below_usage"


class MailNotFound(AccordError):
    """No such message in the mailbox."""

    code = "mail_not_found"


# -- idempotency and operations ----------------------------------------------------------------


class IdempotencyKeyReused(AccordError):
    """This Idempotency-Key was already used with a different request."""

    code = "idempotency_key_reused"


class OperationInProgress(AccordError):
    """A request with this Idempotency-Key is still running: retry later with the same key."""

    code = "operation_in_progress"


class OperationPending(AccordError):
    """The identity provider is unavailable; the operation continues in the background."""

    # Not a failure, so its code is its own; ``reason_code`` says why it waits (a client reads it).
    code = "operation_pending"

    def __init__(
        self,
        operation_id: str,
        retry_after: float,
        message: str | None = None,
        *,
        reason_code: str | None = None,
    ) -> None:
        super().__init__(message, operation_id=operation_id, retry_after=retry_after)
        self.operation_id = operation_id
        self.retry_after = retry_after
        self.reason_code = reason_code or ProviderUnavailable.code


class RetryBudgetExhausted(AccordError):
    """The operation could not finish in its retry budget and was rolled back."""

    code = "retry_budget_exhausted"


class HookFailed(AccordError):
    """An extension hook failed; the operation was rolled back."""

    code = "hook_failed"


# -- identity providers (the port's error contract) ---------------------------------------------


class ProviderError(AccordError):
    """The identity provider failed."""

    code = "idp_error"


class ProviderUnavailable(ProviderError):
    """The identity provider is unavailable (timeout, 5xx or rate limit): retry later."""

    code = "idp_unavailable"

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OutcomeUnknown(ProviderUnavailable):
    """The identity provider did not answer a write: it may or may not have been applied."""

    code = "idp_outcome_unknown"


class RemoteConflict(ProviderError):
    """The identity provider already has a user with this e-mail address or id."""

    code = "idp_conflict"


class RemoteNotFound(ProviderError):
    """The identity provider has no such user."""

    code = "idp_not_found"


class RemoteRejected(ProviderError):
    """The identity provider rejected the request."""

    code = "idp_rejected"


class ProviderMisconfigured(ProviderError):
    """The identity provider refused accord's credentials or configuration."""

    code = "idp_misconfigured"


# -- infrastructure ----------------------------------------------------------------------------


class StorageUnavailable(AccordError):
    """The database is unavailable: retry later."""

    code = "database_unavailable"


class TransactionConflict(StorageUnavailable):
    """Concurrent changes to the same records collided; retry the request."""

    code = "database_conflict"


class ConstraintViolated(AccordError):
    """A database constraint was violated."""

    code = "constraint_violated"

    def __init__(self, constraint: str | None) -> None:
        super().__init__(f"The database refused the change (constraint {constraint}).")
        self.constraint = constraint


class MailUnavailable(AccordError):
    """The mail server could not be reached or refused the message: retry later."""

    code = "mail_unavailable"


# -- invitations -------------------------------------------------------------------------------


class InvitationNotFound(AccordError):
    """There is no such invitation."""

    code = "invitation_not_found"


class InvitationRevoked(AccordError):
    """This invitation was revoked; ask the organization for a new one."""

    code = "invitation_revoked"


class CursorExpired(AccordError):
    """The cursor is older than the events the feed keeps; read again without ``after``."""

    code = "cursor_expired"


class InvitationExpired(AccordError):
    """This invitation has expired; ask the organization for a new one."""

    code = "invitation_expired"


class AlreadyMember(AccordError):
    """This person is already a member of the organization."""

    code = "already_member"


class UserNotLinked(AccordError):
    """The user has no identity in the identity provider to change: run `accord reconcile`."""

    code = "user_not_linked"


# -- suspension -------------------------------------------------------------------------------


class UserSuspended(AccordError):
    """This account is suspended: ask an administrator of your organization to reactivate it."""

    code = "user_suspended"


class UserDeprovisioned(AccordError):
    """The user was deprovisioned: there is no account left to suspend or reactivate."""

    code = "user_deprovisioned"


# -- the catalogue -----------------------------------------------------------------------------

# Every error class, listed by hand: a new class that is not here fails tests/unit/test_errors.py.
CATALOGUE: tuple[type[AccordError], ...] = (
    AccordError,
    InvalidInput,
    EmailInvalid,
    EmailConfusable,
    InvalidActingUser,
    PasswordRejected,
    ConfigurationError,
    EmailAlreadyExists,
    IdentityExists,
    OrganizationNotFound,
    OrganizationExists,
    OrganizationFull,
    UserNotFound,
    OperationNotFound,
    ApiTokenNotFound,
    Forbidden,
    Unauthenticated,
    InvalidCredentials,
    TokenInvalid,
    PasswordChangeRequired,
    TooManyAttempts,
    TooManyRequests,
    PasswordTooWeak,
    ReconcileRunning,
    IdempotencyKeyReused,
    OperationInProgress,
    OperationPending,
    RetryBudgetExhausted,
    HookFailed,
    ProviderError,
    ProviderUnavailable,
    OutcomeUnknown,
    RemoteConflict,
    RemoteNotFound,
    RemoteRejected,
    ProviderMisconfigured,
    StorageUnavailable,
    TransactionConflict,
    ConstraintViolated,
    MailUnavailable,
    InvitationNotFound,
    InvitationRevoked,
    InvitationExpired,
    AlreadyMember,
    LastAdmin,
    OwnerMembership,
    MembershipNotFound,
    LimitBelowUsage,
    MailNotFound,
    UserNotLinked,
    UserSuspended,
    UserDeprovisioned,
    ScimUserNameTaken,
    CursorExpired,
    ScimGroupNameTaken,
    ScimGroupNotFound,
    WebhookNotFound,
    WebhookTargetRefused,
)

_BY_CODE: dict[str, type[AccordError]] = {cls.code: cls for cls in CATALOGUE}


def error_codes() -> dict[str, type[AccordError]]:
    """Every stable code and its class (the published catalogue, one class per code)."""
    return dict(_BY_CODE)
