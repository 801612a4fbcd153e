"""The database edge: PostgreSQL errors become domain errors here, by constraint name, once.

Nobody else in accord catches IntegrityError. The errors come wrapped by SQLAlchemy, or bare
from psycopg for the statements run on it directly (``adapters/db/direct.py``): the same
error means the same thing either way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from accord.domain import errors
from accord.domain.errors import ConstraintViolated

# A violated constraint → the error it means to a user. Constraints absent here are bugs in
# accord (a service let bad data through), and surface as InternalInconsistency.
CONSTRAINT_ERRORS: dict[str, type[errors.AccordError]] = {
    "uq_users_email": errors.EmailAlreadyExists,
    "ck_users_email_normalized": errors.EmailInvalid,
    "uq_organizations_slug": errors.OrganizationExists,
    "ck_organizations_max_users_positive": errors.InvalidInput,
    "fk_memberships_organization_id_organizations": errors.OrganizationNotFound,
    "fk_api_tokens_organization_id_organizations": errors.OrganizationNotFound,
    # SCIM: a concurrent rename took the userName first (services/scim.py answers uniqueness).
    "uq_scim_users_organization_id_user_name_key": errors.ScimUserNameTaken,
    # A concurrent request with the same key inserted its operation first.
    "uq_operations_caller_idempotency_key": errors.OperationInProgress,
    # The local IdP: an e-mail change to an address another identity has.
    "uq_local_identities_email": errors.RemoteConflict,
}


# SQLSTATEs of a transaction PostgreSQL rolled back because it collided with another:
# deadlock_detected and serialization_failure. The same transaction run again may well pass.
CONFLICTS = frozenset({"40P01", "40001"})


def constraint_name(exc: DBAPIError | psycopg.Error) -> str | None:
    """The name of the constraint that ``exc`` reports, if it is a constraint violation."""
    diag = getattr(_driver_error(exc), "diag", None)
    return getattr(diag, "constraint_name", None)


def translate(exc: DBAPIError | psycopg.Error) -> errors.AccordError:
    """The domain error that a database error means."""
    driver_error = _driver_error(exc)
    if isinstance(exc, IntegrityError | psycopg.IntegrityError):
        name = constraint_name(exc)
        error_type = CONSTRAINT_ERRORS.get(name or "")
        return error_type() if error_type else ConstraintViolated(name)
    if getattr(driver_error, "sqlstate", None) in CONFLICTS:
        return errors.TransactionConflict()
    lost = OperationalError | InterfaceError | psycopg.OperationalError | psycopg.InterfaceError
    if isinstance(exc, lost):
        return errors.StorageUnavailable()
    return errors.StorageUnavailable("The database failed to run a statement.")


def _driver_error(exc: DBAPIError | psycopg.Error) -> BaseException | None:
    return exc.orig if isinstance(exc, DBAPIError) else exc


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Run a block, turning any database error it raises into a domain error."""
    try:
        yield
    except (DBAPIError, psycopg.Error) as exc:
        raise translate(exc) from exc
