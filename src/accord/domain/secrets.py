"""Generated secrets and their digests (G9). Pure: randomness and hashing, no storage.

Generated secrets have ≥128 bits of entropy, so a single SHA-256 is a safe digest and costs
nothing to check; passwords that people choose are hashed with argon2id elsewhere
(adapters/idp/local.py), because they are guessable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

_PASSWORD_ALPHABET = string.ascii_letters + string.digits + "!#%+-=?@^_"
TEMP_PASSWORD_LENGTH = 16


def new_token() -> str:
    """A URL-safe random token (256 bits)."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The SHA-256 hex digest under which a generated secret is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_digest(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches ``stored``, in constant time."""
    return hmac.compare_digest(digest(secret), stored)


def temporary_password() -> str:
    """A 16-character password with lower, upper, digit and symbol (≈100 bits)."""
    while True:
        candidate = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(TEMP_PASSWORD_LENGTH))
        classes = (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
        if all(any(test(c) for c in candidate) for test in classes):
            return candidate
