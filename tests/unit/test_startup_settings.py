"""Start-up settings that cannot work stop accord, saying what to fix: an ACCORD_SECRET_KEY that
cannot be a key (instead of sealing secrets with something else; without one, the key file is
made once), an embedded database directory that cannot be made."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from accord.adapters.db.embedded import start_embedded
from accord.bootstrap import build_sealer
from accord.config import Settings
from accord.domain import errors


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("abcde", "ACCORD_SECRET_KEY is not base64url text"),
        ("@@@@", "must be 32 bytes"),  # no base64 alphabet at all: decodes to nothing
        ("Q0LS-YgJqMcOLWmkpbhXjd", "must be 32 bytes"),  # a key cut short when pasted
    ],
)
def test_a_key_that_is_not_a_key_is_refused_at_start(key: str, says: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=says):
        build_sealer(Settings(idp="local", secret_key=SecretStr(key)))


def test_without_a_key_one_is_made_once_and_kept_private(tmp_path: Path) -> None:
    settings = Settings(idp="local", data_dir=tmp_path)
    first = build_sealer(settings)
    sealed = first.seal({"password": "p"})
    path = tmp_path / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert build_sealer(settings).open(sealed) == {"password": "p"}  # the same key, read back


def test_an_embedded_database_directory_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data directory should be")
    with pytest.raises(errors.ConfigurationError, match="Set ACCORD_DATA_DIR to a writable"):
        start_embedded(blocker)
