"""E-mail normalization: the one spelling of an address that accord stores and compares."""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

from accord.domain.errors import EmailInvalid

# RFC 5321 limits: the whole address (as used in SMTP paths) and its local part.
MAX_EMAIL_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64


def normalize_email(raw: str) -> str:
    """Trim, NFC-normalize, lower-case and validate ``raw``; raise EmailInvalid naming the fault.

    The whole address is lower-cased, local part included: two addresses that differ only in
    case are one person in practice, and IdPs disagree on whether they are (Auth0's lookup is
    case-sensitive, Keycloak lower-cases). Validation is syntactic only: no DNS.
    """
    if not isinstance(raw, str):
        raise EmailInvalid("The e-mail address must be text.")
    candidate = unicodedata.normalize("NFC", raw.strip()).lower()
    if not candidate:
        raise EmailInvalid("The e-mail address is empty.")
    if len(candidate) > MAX_EMAIL_LENGTH:
        raise EmailInvalid(
            f"The e-mail address is {len(candidate)} characters long; "
            f"at most {MAX_EMAIL_LENGTH} are allowed."
        )
    local = candidate.rpartition("@")[0]
    if len(local.encode()) > MAX_LOCAL_PART_LENGTH:
        raise EmailInvalid(
            f"The part before the @ is {len(local.encode())} bytes long; "
            f"at most {MAX_LOCAL_PART_LENGTH} are allowed."
        )
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise EmailInvalid(f"The e-mail address {candidate!r} is not valid: {exc}") from None
    # email-validator lower-cases the domain and NFC-normalizes; the local part is already lower.
    return checked.normalized.lower()


def local_part(email: str) -> str:
    """The part of a normalized address before the last '@'."""
    return email.rpartition("@")[0]
