"""Structured JSON logs (structlog over the standard library's logging), secrets redacted.

The access log never records bodies, headers or query strings; ``redact`` is the second line of
defence (G9): any field that names a secret, and any API token that slips into a value, is
replaced before a line is written.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

REDACTED = "[redacted]"
_SECRET_FIELDS = {"authorization", "token", "access_token", "api_token", "cookie", "secret"}
_SECRET_SUFFIXES = ("password", "_secret", "_token")
# Secrets inside free text (an exception message, say): API tokens, bearer credentials,
# ``password=...``-style pairs and the password in a URL's user-info.
_TEXT_PATTERNS = [
    (re.compile(r"acc_[A-Za-z0-9_\-]{8,}"), "acc_" + REDACTED),
    (re.compile(r"(?i)(bearer\s+)[^\s\"',]+"), r"\1" + REDACTED),
    (
        # ``token:<id>`` is a caller key, not a secret: tokens need ``=``.
        re.compile(r"(?i)((?:password|passwd|secret)[\"']?\s*[:=]\s*|token\s*=\s*)[^\s,;&\"']+"),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+@"), r"\1" + REDACTED + "@"),
]


def _is_secret_field(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_FIELDS or lowered.endswith(_SECRET_SUFFIXES)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        for pattern, replacement in _TEXT_PATTERNS:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, dict):
        return {k: REDACTED if _is_secret_field(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: hide secret fields and tokens found in text."""
    for key in list(event):
        event[key] = REDACTED if _is_secret_field(key) else _scrub(event[key])
    return event


def configure_structlog() -> None:
    """Render structlog events as JSON through the standard library's ``logging``."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,  # a disabled level costs nothing
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for accord's loggers (call once, from the process entry point)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("accord")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    configure_structlog()


def get_logger(name: str = "accord.api") -> Any:
    """A structlog logger."""
    return structlog.get_logger(name)
