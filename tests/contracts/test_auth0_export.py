"""Auth0's bulk export when it goes wrong: a failed job, a job that never finishes, a file cut
short or corrupted. The listing raises every time; it never returns part of the users (reconcile
would take the missing ones for deleted users and deprovision them)."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable

import pytest

from accord.adapters.idp.auth0 import Auth0Provider
from accord.domain.errors import ProviderUnavailable
from tests.contracts import test_auth0_adapter as adapter_tests
from tests.contracts.test_auth0_adapter import Emulator, FakeClock

# The adapter tests' fixtures: an emulator on loopback, and providers of it.
emulator, make_provider = adapter_tests.emulator, adapter_tests.make_provider

EMAILS = [f"user{i}@example.com" for i in range(40)]


def flushed_lines(data: bytes) -> list[bytes]:
    """The export re-compressed with a sync flush after each line: the compressed prefix that
    ends at each flush inflates to whole lines, the way a download cut at a line end does."""
    compress = zlib.compressobj(wbits=zlib.MAX_WBITS | 16)
    parts = [compress.compress(b"")]
    for line in gzip.decompress(data).splitlines(keepends=True):
        parts.append(compress.compress(line) + compress.flush(zlib.Z_SYNC_FLUSH))
    return parts


def cut_at_a_line_end(data: bytes) -> bytes:
    parts = flushed_lines(data)
    return b"".join(parts[: len(parts) // 2])  # half the users, no trailer


def flipped_crc(data: bytes) -> bytes:
    return data[:-8] + bytes([data[-8] ^ 0xFF]) + data[-7:]  # the CRC-32 no longer matches


def two_members(data: bytes) -> bytes:
    lines = gzip.decompress(data).splitlines(keepends=True)
    half = len(lines) // 2
    return gzip.compress(b"".join(lines[:half])) + gzip.compress(b"".join(lines[half:]))


@pytest.fixture
def idp(emulator: Emulator, make_provider: Callable[..., Auth0Provider]) -> Auth0Provider:
    for email in EMAILS:
        emulator.tenant.seed_user(email)
    return make_provider(export_poll_seconds=0.001)


async def listing(idp: Auth0Provider) -> list[str]:
    return [user.email async for user in idp.iter_users()]


async def test_a_whole_export_lists_everyone(idp: Auth0Provider) -> None:
    assert sorted(await listing(idp)) == sorted(EMAILS)


async def test_an_export_of_several_gzip_members_lists_everyone(
    emulator: Emulator, idp: Auth0Provider
) -> None:
    emulator.tenant.export_damage = two_members
    assert sorted(await listing(idp)) == sorted(EMAILS)


@pytest.mark.parametrize(
    "damage",
    [
        cut_at_a_line_end,
        lambda data: data[: len(data) // 2],  # cut anywhere
        lambda data: data[:-8],  # the trailer lost
        flipped_crc,
        lambda data: b"",  # an empty download is not an export (even of no users)
        lambda data: b"not gzip at all\n",
        lambda data: gzip.compress(b'{"user_id": "auth0|x", "email": \n'),  # not JSON
    ],
    ids=["cut-at-a-line-end", "cut", "no-trailer", "bad-crc", "empty", "not-gzip", "bad-json"],
)
async def test_a_damaged_export_file_raises_instead_of_listing_part_of_it(
    emulator: Emulator, idp: Auth0Provider, damage: Callable[[bytes], bytes]
) -> None:
    emulator.tenant.export_damage = damage
    with pytest.raises(ProviderUnavailable, match="export download failed"):
        await listing(idp)


def test_the_line_end_cut_really_inflates_to_whole_lines() -> None:
    """The plant above is what it claims: without a trailer check it would list half."""
    data = gzip.compress("".join(json.dumps({"n": i}) + "\n" for i in range(10)).encode())
    inflated = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(cut_at_a_line_end(data))
    assert inflated.endswith(b"\n") and 0 < inflated.count(b"\n") < 10


async def test_a_failed_export_job_raises(emulator: Emulator, idp: Auth0Provider) -> None:
    emulator.tenant.export_fails = True
    with pytest.raises(ProviderUnavailable, match="did not finish: the emulator was told to fail"):
        await listing(idp)


async def test_an_export_job_that_never_finishes_raises_at_its_deadline(
    emulator: Emulator, make_provider: Callable[..., Auth0Provider]
) -> None:
    clock = FakeClock()
    idp = make_provider(export_poll_seconds=0.001, export_timeout_seconds=60, clock=clock)
    emulator.tenant.export_polls = 10**9  # "processing" forever
    polls = 0
    original = idp._call

    async def tick(method: str, path: str, **kw: object) -> object:  # time passes per poll
        nonlocal polls
        if path.startswith("/api/v2/jobs/job_"):
            polls += 1
            clock.now += 25
        return await original(method, path, **kw)

    idp._call = tick  # type: ignore[method-assign]
    with pytest.raises(ProviderUnavailable, match="did not finish: status 'processing'"):
        await listing(idp)
    assert polls == 3  # 25 s, 50 s, then 75 s is past the 60 s deadline
