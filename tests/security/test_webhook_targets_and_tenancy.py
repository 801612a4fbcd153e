"""Webhooks cannot be aimed at accord's own network (SSRF), and an organization token manages
its organization's endpoints only (G10): another organization's endpoint is, to it, one that
does not exist."""

from __future__ import annotations

import asyncio
import socket
from uuid import uuid4

import httpx
import pytest

from accord.adapters.webhooks.http import HttpWebhookTargets
from accord.bootstrap import Accord
from accord.domain.errors import WebhookTargetRefused
from accord.services import tokens
from tests.api.conftest import bearer, new_org, problem
from tests.security import verifying_server

settings, http = verifying_server.settings, verifying_server.http

INTERNAL = [
    "http://127.0.0.1:8000/hook",
    "http://localhost/hook",
    "http://[::1]/hook",
    "http://10.0.0.7/hook",
    "http://192.168.1.1/hook",
    "http://172.16.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
    "http://[fd00:ec2::254]/latest/meta-data/",  # its IPv6 address on AWS
    "http://100.64.0.1/hook",  # carrier-grade NAT
    "http://0.0.0.0/hook",
    "http://[::ffff:127.0.0.1]/hook",  # loopback dressed as IPv6
    "http://2130706433/hook",  # 127.0.0.1 as one decimal number
]


@pytest.mark.parametrize("url", ["http://bad\x8fhost/", "http://[nothost]/", "http://x:99999/"])
async def test_a_malformed_target_is_refused_not_a_server_error(url: str) -> None:
    with pytest.raises(WebhookTargetRefused):
        await HttpWebhookTargets(allow_private=False).check(url)


@pytest.mark.parametrize("url", INTERNAL)
async def test_a_target_on_a_private_address_is_refused(
    accord: Accord, http: httpx.AsyncClient, url: str
) -> None:
    platform, _ = await tokens.create_token(accord, name="platform")
    answer = await http.post("/api/admin/webhooks", json={"url": url}, headers=bearer(platform))
    body = problem(answer, 422, "webhook_target_refused")
    assert "ALLOW_PRIVATE_TARGETS" in body["detail"] or "resolve" in body["detail"]


async def test_a_delivery_is_not_sent_to_a_private_address_either() -> None:
    """The check is made again before every attempt (a name may resolve elsewhere later)."""
    with pytest.raises(WebhookTargetRefused):
        await HttpWebhookTargets().send(
            "http://127.0.0.1:9/x", secrets=["whsec_" + "A" * 32], message_id="m", body={}
        )


async def test_an_organization_token_manages_only_its_own_endpoints(
    accord: Accord, http: httpx.AsyncClient
) -> None:
    tag = uuid4().hex[:8]
    a, b = await new_org(accord, f"Hooks A {tag}"), await new_org(accord, f"Hooks B {tag}")
    token_a, _ = await tokens.create_token(accord, name="a", organization_id=a)
    token_b, _ = await tokens.create_token(accord, name="b", organization_id=b)
    url = "https://93.184.215.14/hook"
    mine = await http.post("/api/admin/webhooks", json={"url": url}, headers=bearer(token_a))
    assert mine.status_code == 201, mine.text
    assert mine.json()["organization_id"] == str(a)  # an organization token's: always its own
    theirs = (
        await http.post("/api/admin/webhooks", json={"url": url}, headers=bearer(token_b))
    ).json()["id"]

    for_b = await http.post(
        "/api/admin/webhooks",
        json={"url": url, "organization_id": str(b)},
        headers=bearer(token_a),
    )
    problem(for_b, 404, "organization_not_found")
    listed = (await http.get("/api/admin/webhooks", headers=bearer(token_a))).json()["items"]
    assert [e["id"] for e in listed] == [mine.json()["id"]]
    one = f"/api/admin/webhooks/{theirs}"
    missing = f"/api/admin/webhooks/{uuid4()}"
    for path in (one, missing):
        auth = bearer(token_a)
        problem(await http.get(path, headers=auth), 404, "webhook_not_found")
        problem(
            await http.patch(path, json={"enabled": False}, headers=auth), 404, "webhook_not_found"
        )
        problem(await http.post(f"{path}/rotate-secret", headers=auth), 404, "webhook_not_found")
        problem(
            await http.post(f"{path}/replay", json={"after": 0}, headers=auth),
            404,
            "webhook_not_found",
        )
        problem(await http.get(f"{path}/deliveries", headers=auth), 404, "webhook_not_found")
        problem(await http.delete(path, headers=auth), 404, "webhook_not_found")
    still = await http.get(one, headers=bearer(token_b))
    assert still.status_code == 200 and still.json()["enabled"] is True  # untouched


@pytest.mark.parametrize(
    ("url", "public", "reached"),
    [
        ("https://hooks.example/in", "93.184.216.34", "https://93.184.216.34/in"),
        (
            "http://hooks.example:8080/in",
            "2606:2800:220:1::1",
            "http://[2606:2800:220:1::1]:8080/in",
        ),
    ],
)
async def test_a_delivery_goes_to_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch, url: str, public: str, reached: str
) -> None:
    """DNS rebinding: the name answers a public address to the check and loopback to anyone
    who asks again. The attempt connects to the checked address, still naming the host (Host
    header; for https the TLS server name, so the certificate is verified against it)."""
    answers = iter([public, "127.0.0.1", "127.0.0.1"])

    async def rebinding(self: object, host: str, port: int, **_: object) -> list[tuple]:
        family = socket.AF_INET6 if ":" in public else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(type(asyncio.get_running_loop()), "getaddrinfo", rebinding)
    sent: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    targets = HttpWebhookTargets(transport=httpx.MockTransport(receiver))
    attempt = await targets.send(url, secrets=["whsec_" + "A" * 32], message_id="m", body={})

    assert attempt.succeeded
    [request] = sent
    assert str(request.url) == reached
    assert request.headers["host"] == httpx.URL(url).netloc.decode()
    assert request.extensions.get("sni_hostname") == (
        "hooks.example" if url.startswith("https") else None
    )


async def test_another_tenant_reusing_an_idempotency_key_gets_its_own_endpoint(
    accord: Accord, http: httpx.AsyncClient
) -> None:
    tag = uuid4().hex[:8]
    a, b = await new_org(accord, f"Keys A {tag}"), await new_org(accord, f"Keys B {tag}")
    token_a, _ = await tokens.create_token(accord, name="a", organization_id=a)
    token_b, _ = await tokens.create_token(accord, name="b", organization_id=b)
    body, key = {"url": "https://93.184.215.14/hook"}, {"Idempotency-Key": f"shared-{tag}"}
    mine = await http.post("/api/admin/webhooks", json=body, headers={**bearer(token_a), **key})
    theirs = await http.post("/api/admin/webhooks", json=body, headers={**bearer(token_b), **key})
    assert (mine.status_code, theirs.status_code) == (201, 201), theirs.text
    assert theirs.json()["id"] != mine.json()["id"]  # a key is its caller's: B's own endpoint
    assert theirs.json()["secret"] != mine.json()["secret"]
    assert theirs.json()["organization_id"] == str(b)
    listed = (await http.get("/api/admin/webhooks", headers=bearer(token_b))).json()["items"]
    assert [e["id"] for e in listed] == [theirs.json()["id"]]
