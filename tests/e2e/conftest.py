"""End-to-end helpers: run the real ``accord`` command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_accord(*args: str, env: dict[str, str], timeout: float = 120) -> Result:
    """Run ``accord ARGS`` with exactly ``env`` (plus PATH/HOME) and capture its output."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    proc = subprocess.run(
        [sys.executable, "-m", "accord", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli_env(database_url: str, tmp_path) -> dict[str, str]:
    """Environment for a CLI run against this test's database."""
    from accord.adapters.sealing import new_key_text

    return {
        "ACCORD_DATABASE_URL": database_url,
        "ACCORD_DATA_DIR": str(tmp_path),
        "ACCORD_SECRET_KEY": new_key_text(),
        "ACCORD_REGISTRATION__VERIFY_EMAIL": "false",  # `accord register` at once, as it was
    }
