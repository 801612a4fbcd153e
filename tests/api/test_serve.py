"""``accord serve`` and ``accord tokens`` as real processes (started side by side: each
process spends seconds importing, and this machine has two cores)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from accord.adapters.sealing import new_key_text
from tests.e2e.conftest import Result

MISSING = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a CLI process on this test's database."""
    return {
        "ACCORD_DATABASE_URL": database_url,
        "ACCORD_DATA_DIR": str(tmp_path),
        "ACCORD_SECRET_KEY": new_key_text(),
    }


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """Start ``accord ARGS`` with exactly ``env`` (plus PATH/HOME)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    return subprocess.Popen(
        [sys.executable, "-m", "accord", *args],
        env={**base, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> Result:
    stdout, stderr = process.communicate(timeout=timeout)
    return Result(process.returncode, stdout, stderr)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen[str], timeout: float = 300) -> None:
    """Poll /healthz until it answers (or the process dies, or the deadline passes).

    The deadline is for a machine under load (a CPU hog beside the suite, every process
    traced by coverage): a healthy start returns as soon as it answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"accord serve exited: {finish(process).stderr}")
        try:
            if httpx.get(f"{url}/healthz", timeout=10).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)  # the poll interval; the deadline bounds the wait
    raise AssertionError("accord serve did not become healthy in time")


def test_serve_with_workers_and_tokens_from_the_cli(env: dict[str, str]) -> None:
    port = free_port()
    server = start(env, "serve", "--port", str(port), "--workers", "2")
    create = start(env, "tokens", "create", "--platform", "--name", "ci", "--json")
    unknown = start(env, "tokens", "revoke", MISSING, "--json")
    try:
        created = finish(create)
        assert created.code == 0, created.stderr
        record = created.json()
        assert record["token"].startswith("acc_") and record["scope"] == "platform"
        assert record["name"] == "ci" and "digest" not in record
        refused = finish(unknown)
        assert (refused.code, refused.json()["code"]) == (1, "api_token_not_found")

        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, server)
        headers = {"Authorization": f"Bearer {record['token']}"}
        org = httpx.post(f"{url}/api/admin/organizations", json={"name": "Acme"}, headers=headers)
        assert org.status_code == 201, org.text
        assert httpx.get(f"{url}/readyz").status_code == 200
        revoked = finish(start(env, "tokens", "revoke", record["id"]))
        assert revoked.code == 0, revoked.stderr
        for _ in range(4):  # whichever worker answers
            assert httpx.get(f"{url}/api/admin/users", headers=headers).status_code == 401
    finally:
        server.terminate()
        served = finish(server, timeout=30)
    assert served.code in (0, -signal.SIGTERM), served.stderr
    assert "Traceback" not in served.stderr
    lines = [json.loads(line) for line in served.stderr.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "request"]
    assert {line["status"] for line in requests} >= {200, 201, 401}
    assert all(line["request_id"] for line in requests)
    assert any(line["caller"] == f"token:{record['id']}" for line in requests)
    assert record["token"] not in served.stderr
