"""The project's keys: HS256 JWTs signed with the project's JWT secret, as Supabase hands them out
(docs/idp/supabase.md#admin-credentials)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

DEFAULT_JWT_SECRET = "accord-emulator-jwt-secret-with-at-least-32-characters"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_jwt(claims: dict[str, Any], secret: str = DEFAULT_JWT_SECRET) -> str:
    """An HS256 JWT, like the keys a Supabase project hands out."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def verify_jwt(token: str, secret: str) -> dict[str, Any]:
    """The claims of an HS256 JWT signed with ``secret``; ValueError (golang-jwt's words) if not."""
    try:
        head, body, signature = token.split(".")
        header, claims = json.loads(_unb64(head)), json.loads(_unb64(body))
        digest = _unb64(signature)
    except (ValueError, TypeError) as exc:  # binascii.Error and JSONDecodeError are ValueErrors
        raise ValueError(f"token is malformed: {exc}") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        raise ValueError("token is unverifiable: signing method is not HS256")
    expected = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, digest):
        raise ValueError("token signature is invalid: signature is invalid")
    if isinstance(claims.get("exp"), int | float) and claims["exp"] < time.time():
        raise ValueError("token has invalid claims: token is expired")
    return claims


DEFAULT_SERVICE_ROLE_KEY = sign_jwt({"iss": "accord-emulator", "role": "service_role"})
DEFAULT_ANON_KEY = sign_jwt({"iss": "accord-emulator", "role": "anon"})
