"""Webhook deliveries over HTTP, signed with the ``standardwebhooks`` library.

One POST per attempt: ``webhook-id`` (the event id, the same on every retry),
``webhook-timestamp`` (Unix seconds of this attempt), ``webhook-signature`` (``v1,<base64>``,
one per live secret, space-separated during a rotation) and the JSON body. Redirects are not
followed (a redirect is a failure: a receiver must give its final URL), 15 s is the limit.

No SSRF: a target must be http(s) and every address its host resolves to public
(``ipaddress.is_global``: no loopback, private, link-local, so no cloud metadata service,
CGNAT or reserved range), unless ``ACCORD_WEBHOOKS__ALLOW_PRIVATE_TARGETS=true``. The check is
made when an endpoint is saved and again before every attempt (a name may come to resolve
elsewhere later), and the attempt connects to the address that was checked: the name is not
looked up a second time, so a DNS answer that changes between check and connect (rebinding)
cannot send it elsewhere. The request still names the host (``Host``, and for https the TLS
server name, against which the certificate is verified).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from standardwebhooks.webhooks import Webhook

from accord.domain.errors import WebhookTargetRefused
from accord.domain.webhooks import TIMEOUT_SECONDS, Attempt

USER_AGENT = "accord-webhooks/1"
_ERROR_CHARS = 300


class HttpWebhookTargets:
    """``WebhookTargets`` with httpx."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        timeout: float = TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,  # tests: what a request reached
    ) -> None:
        self._allow_private = allow_private
        self._timeout = timeout
        self._transport = transport
        # Built once: loading the CA bundle for every attempt's client was 85 % of a delivery's
        # CPU (bench/webhook_delivery.py). A client per attempt stays: no pool outlives a loop.
        self._tls = httpx.create_ssl_context()

    async def check(self, url: str) -> None:
        await self._checked(url)

    async def _checked(self, url: str) -> str | None:
        """Check ``url``; the public address to connect to (None: connect by name, private
        targets are allowed)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:  # a bracketed host that is not an address, a port out of range
            raise WebhookTargetRefused(f"The webhook URL {url!r} is not a valid URL.") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise WebhookTargetRefused(
                f"The webhook URL {url!r} is not an absolute http:// or https:// URL."
            )
        if parts.username or parts.password:
            raise WebhookTargetRefused("The webhook URL may not carry a user name or password.")
        if self._allow_private:
            return None
        addresses = await _addresses(parts.hostname, port)
        for address in addresses:
            if not _public(address):
                raise WebhookTargetRefused(
                    f"The webhook URL's host {parts.hostname!r} resolves to {address}, a "
                    "loopback, private, link-local or reserved address: accord delivers only "
                    "to public addresses (ACCORD_WEBHOOKS__ALLOW_PRIVATE_TARGETS=true allows "
                    "private ones)."
                )
        return addresses[0]

    async def send(
        self, url: str, *, secrets: Sequence[str], message_id: str, body: dict[str, Any]
    ) -> Attempt:
        address = await self._checked(url)
        data = json.dumps(body, separators=(",", ":"))
        now = datetime.now(UTC)
        signature = " ".join(
            Webhook(secret).sign(msg_id=message_id, timestamp=now, data=data) for secret in secrets
        )
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }
        request = httpx.Request("POST", url, content=data.encode(), headers=headers)
        if address is not None:
            _pin(request, address)
        started = time.monotonic()
        try:
            async with httpx.AsyncClient(
                verify=self._tls,
                follow_redirects=False,
                timeout=self._timeout,
                transport=self._transport,
            ) as client:
                response = await client.send(request)
        except httpx.HTTPError as exc:
            return Attempt(None, _ms(started), error=_short(f"{type(exc).__name__}: {exc}"))
        return _attempt(response, _ms(started))


async def _addresses(host: str, port: int | None) -> list[str]:
    try:
        return [ipaddress.ip_address(host).compressed]
    except ValueError:
        pass
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            host, port or 443, type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError):  # unknown, or not a valid name at all (IDNA refuses it)
        raise WebhookTargetRefused(f"The webhook URL's host {host!r} does not resolve.") from None
    return sorted({str(info[4][0]) for info in found})


def _pin(request: httpx.Request, address: str) -> None:
    """Send ``request`` to ``address`` while it still names its host: the ``Host`` header
    stays (httpx set it from the URL), and for https the TLS server name is the host's."""
    host = request.url.host
    if request.url.scheme == "https":
        request.extensions["sni_hostname"] = host
    request.url = request.url.copy_with(host=address)


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _attempt(response: httpx.Response, latency_ms: float) -> Attempt:
    status = response.status_code
    if 200 <= status < 300:
        return Attempt(status, latency_ms)
    error = f"HTTP {status}"
    if 300 <= status < 400:
        error += f" (a redirect to {response.headers.get('location', '?')}: not followed)"
    elif response.text:
        error += f": {response.text}"
    return Attempt(
        status,
        latency_ms,
        error=_short(error),
        retry_after=_retry_after(response.headers.get("retry-after")),
    )


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _short(text: str) -> str:
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"
