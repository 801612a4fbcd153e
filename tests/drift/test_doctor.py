"""accord doctor: a healthy installation passes; each broken part is named; drift shows up in
the sample."""

from __future__ import annotations

from pathlib import Path

from accord.adapters.sealing import new_key_text
from accord.bootstrap import diagnose
from accord.config import Settings
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
        "identity provider": True,
    }
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
