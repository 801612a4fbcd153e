"""E-mail normalization: the one spelling of an address that accord stores and compares."""

from __future__ import annotations

import unicodedata

from confusable_homoglyphs import confusables
from email_validator import EmailNotValidError, validate_email

from accord.domain.errors import EmailConfusable, EmailInvalid

# RFC 5321 limits: the whole address (as used in SMTP paths) and its local part.
MAX_EMAIL_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64


def normalize_email(raw: str) -> str:
    """Trim, fold (NFKC, then case folding) and validate ``raw``; raise EmailInvalid naming the
    fault, or EmailConfusable for a local part that mixes scripts confusably.

    NFKC before case folding makes what a person reads as one address one spelling: a
    full-width "admin" (U+FF41 ...) is "admin", the ligature U+FB01 of "file" is "fi". The whole
    address is case-folded, local part included: two addresses that differ only in case are one
    person in practice, and IdPs disagree on whether they are (Auth0's lookup is
    case-sensitive, Keycloak lower-cases). Validation is syntactic only: no DNS.
    """
    if not isinstance(raw, str):
        raise EmailInvalid("The e-mail address must be text.")
    candidate = fold_email(raw)
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
    _refuse_confusable(local)
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise EmailInvalid(f"The e-mail address {candidate!r} is not valid: {exc}") from None
    # email-validator lower-cases the domain and NFC-normalizes; the local part is already lower.
    return checked.normalized.lower()


def fold_email(raw: str) -> str:
    """NFKC, case folding, NFKC again (folding can undo a composition): Unicode's
    NFKC_Casefold in spirit, trimmed. The one folding; the 0006 migration uses it too."""
    folded = unicodedata.normalize("NFKC", raw.strip()).casefold()
    return unicodedata.normalize("NFKC", folded)


def _refuse_confusable(local: str) -> None:
    """EmailConfusable if ``local`` mixes scripts with a character UTS #39 lists as confusable
    (a Cyrillic a, U+0430, among Latin letters reads as another person's address)."""
    if confusables.is_dangerous(local):
        raise EmailConfusable(
            f"The part before the @ ({local!r}) mixes scripts with look-alike letters "
            "(for example a Cyrillic 'a', U+0430, among Latin ones); "
            "type the address in one script."
        )


def local_part(email: str) -> str:
    """The part of a normalized address before the last '@'."""
    return email.rpartition("@")[0]
