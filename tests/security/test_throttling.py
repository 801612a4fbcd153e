"""Finding "abuse is free", sign-in and public endpoints (issue 11): on 2a4d142, 400 wrong
passwords at 3.1/s and then the right one answered 200; an unknown e-mail answered in 13 ms and a
wrong password in 380 ms; the public endpoints took any number of requests. Now failed sign-ins
are counted per account and address (429 ``too_many_attempts`` with Retry-After, lifting by
itself), an unknown e-mail costs the same argon2 work as a wrong password, and every public
endpoint is limited per client address (429 ``too_many_requests``). The counters are in
PostgreSQL, so two server processes share them. Every limit here is the settings' default."""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from uuid import uuid4

import httpx
import pytest

from accord.adapters.db.rate_limits import pg_throttle
from accord.bootstrap import Accord
from accord.config import Settings, ThrottleSettings
from accord.domain import errors
from accord.entrypoints.api import create_app
from accord.services import credentials, throttling
from accord.services.registration import Registration, register
from accord.testing.servers import serve_in_thread

PASSWORD = "a good long password"
DEFAULTS = ThrottleSettings()


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A real API server on this test's database, every limit at its default."""
    with serve_in_thread(create_app(settings=settings), lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            yield client


@pytest.fixture
def behind_proxy(settings: Settings) -> Iterator[str]:
    """A server that believes loopback's X-Forwarded-For (a reverse proxy on this machine)."""
    proxied = settings.model_copy(
        update={"throttle": DEFAULTS.model_copy(update={"trusted_proxies": ["127.0.0.1"]})}
    )
    with serve_in_thread(create_app(settings=proxied), lifespan="on") as url:
        yield url


async def person(accord: Accord) -> str:
    email = f"p-{uuid4().hex[:10]}@example.com"
    await register(accord, Registration(email, PASSWORD, "Pat"))
    return email


async def login(
    http: httpx.AsyncClient, email: str, password: str, client: str | None = None
) -> httpx.Response:
    headers = {"X-Forwarded-For": client} if client else {}
    body = {"email": email, "password": password}
    return await http.post("/api/auth/login", json=body, headers=headers)


def too_many(response: httpx.Response, code: str, most: float) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == code
    assert 1 <= int(response.headers["retry-after"]) <= most


async def test_guessing_stops_after_five_failures(http: httpx.AsyncClient, accord: Accord) -> None:
    email = await person(accord)
    answers = [(await login(http, email, f"guess {i}")).status_code for i in range(5)]
    assert answers == [401] * 5
    too_many(await login(http, email, "guess 5"), "too_many_attempts", 60)
    # The right password does not get through either: guessing gains nothing by waiting less.
    too_many(await login(http, email, PASSWORD), "too_many_attempts", 60)


async def test_a_success_clears_the_account_counter(
    http: httpx.AsyncClient, accord: Accord
) -> None:
    email = await person(accord)
    for _ in range(2):
        assert [(await login(http, email, "typo")).status_code for _ in range(4)] == [401] * 4
        assert (await login(http, email, PASSWORD)).status_code == 200


async def test_a_stranger_cannot_lock_the_owner_out(accord: Accord, behind_proxy: str) -> None:
    email = await person(accord)
    async with httpx.AsyncClient(base_url=behind_proxy, timeout=120) as http:
        for i in range(25):
            answer = await login(http, email, f"guess {i}", client="203.0.113.9")
            assert answer.status_code == (401 if i < 5 else 429), (i, answer.text)
        signed_in = await login(http, email, PASSWORD, client="198.51.100.7")
        assert signed_in.status_code == 200, signed_in.text


async def test_the_account_limit_lifts_by_itself(accord: Accord) -> None:
    now = [time.time()]
    moved = replace(accord, throttle=pg_throttle(accord.db, clock=lambda: now[0]))
    email = await person(accord)
    for _ in range(5):
        with pytest.raises(errors.InvalidCredentials):
            await throttling.sign_in(moved, email, "guess", "192.0.2.1")
    with pytest.raises(errors.TooManyAttempts) as refused:
        await throttling.sign_in(moved, email, PASSWORD, "192.0.2.1")
    assert 55 <= refused.value.retry_after <= 60
    now[0] += 61  # a minute later the window has moved past the failures
    assert (await throttling.sign_in(moved, email, PASSWORD, "192.0.2.1"))["email"] == email


async def test_an_unknown_email_costs_what_a_wrong_password_costs(accord: Accord) -> None:
    email = await person(accord)

    async def seconds(address: str) -> float:
        started = time.perf_counter()
        with pytest.raises(errors.InvalidCredentials):
            await credentials.verify_password(accord, address, "not the password")
        return time.perf_counter() - started

    await seconds(email)  # warm-up: the first argon2 check and the pool's first connection
    await seconds(f"nobody-{uuid4().hex[:8]}@example.com")
    unknown, wrong = [], []
    for i in range(15):  # interleaved, so a busy moment of the machine hits both alike
        unknown.append(await seconds(f"nobody-{i}-{uuid4().hex[:8]}@example.com"))
        wrong.append(await seconds(email))
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.5 <= ratio <= 2.0, (statistics.median(unknown), statistics.median(wrong))


async def test_public_endpoints_are_limited_per_address_across_processes(
    settings: Settings, accord: Accord
) -> None:
    allowed = int(DEFAULTS.public_requests_per_address.split("/")[0])
    with (
        serve_in_thread(create_app(settings=settings), lifespan="on") as one,
        serve_in_thread(create_app(settings=settings), lifespan="on") as two,
    ):
        async with httpx.AsyncClient(timeout=120) as http:
            for i in range(allowed):  # alternately to two server processes' worth of state
                base = one if i % 2 else two
                answer = await http.post(
                    f"{base}/api/auth/password/setup-link",
                    json={"email": f"x{i}@example.com"},
                    headers={"X-Forwarded-For": f"198.51.100.{i}"},  # not believed by default
                )
                assert answer.status_code == 202, (i, answer.text)
            for base in (one, two):
                refused = await http.post(
                    f"{base}/api/auth/register",
                    json={"email": "late@example.com", "password": PASSWORD, "full_name": "L"},
                )
                too_many(refused, "too_many_requests", 60)


@pytest.mark.parametrize("how", ["disabled", "no throttle"])
async def test_with_throttling_switched_off_nothing_is_counted(accord: Accord, how: str) -> None:
    off = DEFAULTS.model_copy(update={"enabled": False})
    if how == "disabled":
        unthrottled = replace(accord, settings=accord.settings.model_copy(update={"throttle": off}))
    else:
        unthrottled = replace(accord, throttle=None)
    email = await person(accord)
    for _ in range(6):  # one more than the account's limit per minute from one address
        with pytest.raises(errors.InvalidCredentials):
            await throttling.sign_in(unthrottled, email, "guess", "192.0.2.1")
    # Throttled again: none of those failures was counted, so the right password gets in.
    assert (await throttling.sign_in(accord, email, PASSWORD, "192.0.2.1"))["email"] == email
    for _ in range(61):  # one past the address's limit per minute
        await throttling.admit_public(unthrottled, "192.0.2.9")
    for _ in range(60):  # and none of them was counted either
        await throttling.admit_public(accord, "192.0.2.9")
    with pytest.raises(errors.TooManyRequests):
        await throttling.admit_public(accord, "192.0.2.9")
