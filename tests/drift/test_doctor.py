"""accord doctor: a healthy installation passes; each broken part is named; drift shows up in
the sample."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from accord.adapters.sealing import new_key_text
from accord.bootstrap import Accord, diagnose
from accord.config import Settings
from accord.services.doctor import Diagnosis, Installation, examine
from accord.testing import FakeIdentityProvider, Fault
from tests.drift import scenes
from tests.engine.conftest import new_org


def checks(diagnosis) -> dict[str, bool]:
    return {c["name"]: c["ok"] for c in diagnosis.checks}


async def test_a_healthy_installation_passes_within_its_bound(settings: Settings, accord) -> None:
    org = await new_org(accord)
    await scenes.user(accord, "ada@example.com", org)
    diagnosis = await diagnose(settings)  # doctor bounds each check itself (10 s)
    assert checks(diagnosis) == {
        "configuration": True,
        "database": True,
        "migrations": True,
        "mail": True,
        "identity provider": True,
    }
    [mail] = [c for c in diagnosis.checks if c["name"] == "mail"]
    assert "embedded mailbox" in mail["detail"]  # no SMTP settings: mail works out of the box
    assert diagnosis.healthy
    assert diagnosis.drift_sample["sampled"] == 2  # the row, and the IdP user
    assert "cut_short" not in diagnosis.drift_sample  # the sample finished within its bound


async def test_drift_in_the_sample_makes_it_unhealthy(settings: Settings, accord) -> None:
    org = await new_org(accord)
    await scenes.orphan_row(accord, "gone@example.com", org)
    await scenes.ghost_idp_user(accord, "ghost@example.com")

    diagnosis = await diagnose(settings)

    assert all(checks(diagnosis).values())
    assert diagnosis.drift_sample["orphan_rows"] == 1
    assert diagnosis.drift_sample["orphan_idp_users"] == 1
    assert not diagnosis.healthy


async def test_an_unconfigured_idp_is_named(settings: Settings) -> None:
    diagnosis = await diagnose(settings.model_copy(update={"idp": "auth0"}))

    [idp] = [c for c in diagnosis.checks if c["name"] == "identity provider"]
    assert not idp["ok"] and "ACCORD_AUTH0__DOMAIN" in idp["detail"]
    assert checks(diagnosis)["migrations"] is True


async def test_an_unmigrated_database_is_named(empty_database_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=empty_database_url, data_dir=tmp_path, secret_key=new_key_text()
    )

    diagnosis = await diagnose(settings)

    assert checks(diagnosis) == {"configuration": True, "database": True, "migrations": False}
    [migrations] = [c for c in diagnosis.checks if c["name"] == "migrations"]
    assert "accord db upgrade" in migrations["detail"]


class Stalled:
    """A provider whose chosen calls never answer (the IdP hangs), or whose listing is a plain
    iterator (no ``aclose``), as a third-party adapter may give."""

    def __init__(self, inner: Any, *, hang: str = "", plain_listing: bool = False) -> None:
        self._inner, self.name, self._hang = inner, inner.name, hang
        self._plain = plain_listing
        self.closed = False

    async def _maybe_hang(self, method: str) -> None:
        if method == self._hang:
            await asyncio.Event().wait()  # never set: only doctor's own bound ends this

    async def check(self) -> None:
        await self._maybe_hang("check")

    async def get(self, remote_id: str) -> Any:
        await self._maybe_hang("get")
        return await self._inner.get(remote_id)

    def iter_users(self, *, page_size: int = 100) -> AsyncIterator[Any]:
        listing = self._inner.iter_users(page_size=page_size)
        return Plain(listing) if self._plain else listing

    async def aclose(self) -> None:
        self.closed = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Plain:
    """An async iterator that is not a generator."""

    def __init__(self, inner: AsyncIterator[Any]) -> None:
        self._inner = inner

    def __aiter__(self) -> Plain:
        return self

    async def __anext__(self) -> Any:
        return await self._inner.__anext__()


def installation(accord: Accord, provider: Any) -> Installation:
    """What ``diagnose`` builds, on this test's database and ``provider``."""

    async def schema() -> tuple[str, str]:
        return "head", "head"

    return Installation(accord.store, "the test database", schema, lambda: provider)


async def test_a_database_that_does_not_answer_is_named(settings: Settings) -> None:
    url = settings.database_url.get_secret_value().rsplit("/", 1)[0] + "/no_such_database"
    diagnosis = await diagnose(settings.model_copy(update={"database_url": SecretStr(url)}))
    assert checks(diagnosis) == {"configuration": True, "database": False}
    assert "does not answer" in diagnosis.checks[-1]["detail"]
    assert not diagnosis.healthy


async def test_an_idp_that_refuses_or_never_answers_is_named(accord: Accord) -> None:
    refusing = FakeIdentityProvider()
    refusing.script("check", Fault.MISCONFIGURED)
    hanging = Stalled(FakeIdentityProvider(), hang="check")
    details = []
    for provider in (refusing, hanging):
        diagnosis = await examine(installation(accord, provider), Diagnosis(), seconds=0.2)
        [idp] = [c for c in diagnosis.checks if c["name"] == "identity provider"]
        assert not idp["ok"] and not diagnosis.healthy
        assert diagnosis.drift_sample == {}  # the sample depends on the IdP: not run
        details.append(idp["detail"])
    assert details == ["fake: fake IdP: 401 invalid credentials", "fake: no answer within 0.2 s"]
    assert hanging.closed  # its connections are not left open


async def test_the_sample_counts_unfinished_and_unlinked_rows_but_not_busy_ones(
    settings: Settings, accord: Accord
) -> None:
    org = await new_org(accord)
    await scenes.never_finished_row(accord, "halfway@example.com")
    await scenes.unlinked_match(accord, "unlinked@example.com", org)
    await scenes.stuck_operation(accord, "idle@example.com", org, past_deadline=False)

    sample = (await diagnose(settings)).drift_sample

    assert sample["rows_never_finished"] == 1  # not the row its open operation is making
    assert sample["rows_without_link"] == 1
    assert sample["unlinked_matches"] == 1
    assert sample["stuck_operations"] == 1


async def test_the_sample_is_bounded_and_ends_a_listing_of_any_kind(accord: Accord) -> None:
    org = await new_org(accord)
    for n in range(3):
        await scenes.user(accord, f"u{n}@example.com", org)
    provider = Stalled(accord.idp, plain_listing=True)

    diagnosis = await examine(installation(accord, provider), Diagnosis(), sample=2)

    assert diagnosis.drift_sample["sampled"] == 4  # 2 rows and 2 IdP users, of 3 each
    assert diagnosis.healthy


async def test_a_sample_the_idp_stalls_is_cut_short_at_the_bound(accord: Accord) -> None:
    await scenes.user(accord, "ada@example.com", await new_org(accord))
    provider = Stalled(accord.idp, hang="get")

    diagnosis = await examine(installation(accord, provider), Diagnosis(), seconds=0.2)

    assert diagnosis.drift_sample["cut_short"] == "the sample took more than 0.2 s"
    assert provider.closed


async def test_a_sample_the_idp_refuses_makes_the_installation_unhealthy(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    await scenes.user(accord_fake, "ada@example.com", await new_org(accord_fake))
    fake_idp.script("iter_users", Fault.MISCONFIGURED)  # reads by id work; the listing is refused

    diagnosis = await examine(installation(accord_fake, fake_idp), Diagnosis())

    assert diagnosis.drift_sample["cut_short"] == "fake IdP: 401 invalid credentials"
    assert not diagnosis.healthy  # reconcile would fail the same way: not a healthy install
    [failed] = [c for c in diagnosis.checks if not c["ok"]]
    assert failed == {
        "name": "drift sample",
        "ok": False,
        "detail": "fake: fake IdP: 401 invalid credentials",
    }


async def test_an_smtp_server_that_does_not_answer_is_named(settings: Settings, smtp) -> None:
    port = smtp.port
    smtp.stop()
    away = settings.model_copy(
        update={"smtp": settings.smtp.model_copy(update={"host": "127.0.0.1", "port": port})}
    )
    diagnosis = await diagnose(away)
    [mail] = [c for c in diagnosis.checks if c["name"] == "mail"]
    assert not mail["ok"] and f"127.0.0.1:{port}" in mail["detail"]
    smtp.start()
    diagnosis = await diagnose(away)
    assert checks(diagnosis)["mail"] is True
