"""Sealing: authenticated encryption for the few secrets accord must hold for a while.

An open registration must remember the registrant's password until the IdP user exists, and a
stored idempotent response must replay a temporary password: both are sealed (AES-256-GCM) with
the server key and dropped when no longer needed (G9: never stored in plaintext).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from accord.domain.errors import ConfigurationError

_NONCE_BYTES = 12
WRONG_KEY = (
    "ACCORD_SECRET_KEY differs from the key of the accord process that started this operation. "
    "Every accord process (servers and workers) must share one key: fix the setting; the "
    "operation waits, untouched, until a process with the right key resumes it."
)


class Sealer:
    """Seals and opens small JSON documents with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigurationError("The secret key must be 32 bytes (base64url-encoded).")
        self._aead = AESGCM(key)
        self._mac_key = hmac.new(key, b"accord request fingerprint", hashlib.sha256).digest()
        # Names the key without revealing it, so a digest made with another key is told apart
        # from a digest of another document (a misconfiguration, not a reused Idempotency-Key).
        self._key_id = hmac.new(self._mac_key, b"accord key id", hashlib.sha256).hexdigest()[:16]

    def fingerprint(self, document: dict[str, Any]) -> str:
        """A keyed digest of ``document``: equal for equal documents, useless to a guesser
        (a plain hash of a request holding a password would be a crackable password hash).
        It starts with the key's id: ``<key id>:<digest>``."""
        return f"{self._key_id}:{self._digest(document)}"

    def matches(self, fingerprint: str, document: dict[str, Any]) -> bool:
        """Whether ``fingerprint`` is ``document``'s; ``ConfigurationError`` when it was made
        with another key (a fingerprint from before key ids carries none, and is compared)."""
        key_id, _, digest = fingerprint.rpartition(":")
        if key_id and not hmac.compare_digest(key_id, self._key_id):
            raise ConfigurationError(WRONG_KEY)
        return hmac.compare_digest(digest, self._digest(document))

    def _digest(self, document: dict[str, Any]) -> str:
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
        return hmac.new(self._mac_key, canonical.encode(), hashlib.sha256).hexdigest()

    def seal(self, document: dict[str, Any]) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, json.dumps(document).encode(), None)

    def open(self, sealed: bytes) -> dict[str, Any]:
        try:
            plain = self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], None)
        except InvalidTag:
            raise ConfigurationError(f"A sealed secret cannot be opened: {WRONG_KEY}") from None
        return json.loads(plain)

    def derived_key(self, purpose: str) -> bytes:
        """A 32-byte key for one ``purpose`` (e.g. signing login tokens), derived from the
        server key: distinct purposes get independent keys, and none reveals the server key."""
        label = b"accord derived key: " + purpose.encode()
        return hmac.new(self._mac_key, label, hashlib.sha256).digest()


def decode_key(encoded: str) -> bytes:
    """The raw key from its base64url text form."""
    try:
        return base64.urlsafe_b64decode(encoded.strip() + "==")
    except ValueError:
        raise ConfigurationError("ACCORD_SECRET_KEY is not base64url text.") from None


def new_key_text() -> str:
    """A new random key in text form."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def load_or_create_key(path: Path) -> bytes:
    """The key stored at ``path``, created (mode 0600) on first use."""
    try:
        return decode_key(path.read_text())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return decode_key(path.read_text())
    with os.fdopen(fd, "w") as handle:
        handle.write(new_key_text())
    return decode_key(path.read_text())
