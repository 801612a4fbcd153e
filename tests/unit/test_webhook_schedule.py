"""The retry schedule is Svix's (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) with
±10 % jitter, and a receiver's ``Retry-After`` on 429/503 is waited for at least."""

from __future__ import annotations

import random

import pytest

from accord.domain.webhooks import MAX_ATTEMPTS, Attempt, retry_delay

SVIX = [5, 300, 1800, 7200, 18000, 36000, 36000]


@pytest.mark.parametrize(("failures", "base"), list(enumerate(SVIX, start=1)))
def test_each_failure_waits_the_schedule_with_jitter(failures: int, base: float) -> None:
    rng = random.Random(failures)
    waits = [retry_delay(failures, Attempt(500, 1.0), rng=rng) for _ in range(200)]
    assert all(0.9 * base <= w <= 1.1 * base for w in waits)
    assert len(set(waits)) > 100  # jittered: endpoints that failed together spread out


def test_eight_attempts_in_all() -> None:
    assert MAX_ATTEMPTS == 8


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured_on_429_and_503(status: int) -> None:
    assert retry_delay(1, Attempt(status, 1.0, retry_after=600)) >= 600
    assert retry_delay(1, Attempt(500, 1.0, retry_after=600)) < 10  # only on 429/503
