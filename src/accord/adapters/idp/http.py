"""What every vendor adapter reads off an HTTP answer, or a failed request, the same way."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

# The request never left: connecting failed, or no pooled connection came free. A write that
# failed in any other way may have been applied.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def was_sent(exc: Exception) -> bool:
    """Whether a request that failed with ``exc`` may have reached the server."""
    return not isinstance(exc, NOT_SENT)


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or ``{}`` when the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header (RFC 9110: delta-seconds or an HTTP date) as seconds, or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
