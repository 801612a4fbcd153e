"""The worker's CPU per delivered invitation mail: N invitations are queued, then the worker's
mail delivery (``deliver_outbox``, its default batch) runs until the outbox is empty, into a
local SMTP sink in its own process (so the sink's CPU is not counted).

    uv run python bench/mail_cpu.py [--mails 400] [--profile FILE] [--database-url URL]

Only the public services are used, so one checkout's probe measures another's code:
``cd /work/main && uv run python /work/wt-mail/bench/mail_cpu.py`` imports main's accord.
Prints one JSON object: the mails sent, the process CPU (user + system) and wall time of the
delivery, CPU per mail in ms, and the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from p1_create import free_port  # bench/ is on sys.path
from reconcile import drop_database, fresh_database

from accord.adapters.sealing import new_key_text
from accord.bootstrap import build, build_mailer
from accord.config import Settings, SmtpSettings
from accord.domain.callers import Caller
from accord.domain.model import CredentialMode
from accord.services.mail import deliver_outbox
from accord.services.organizations import NewOrganization, create_organization
from accord.services.provisioning import NewUser, create_user


def start_sink(port: int) -> subprocess.Popen:
    """aiosmtpd's Sink handler (accepts and drops every message), once it listens."""
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}"]
    proc = subprocess.Popen([*command, "-c", "aiosmtpd.handlers.Sink"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)  # a process coming up; nothing to wait on but its port
    proc.kill()
    raise RuntimeError("the SMTP sink did not start")


def platform_caller() -> Caller:  # the same caller the test suite uses
    return Caller.platform("token:platform", "admin@platform.test")


async def measure(settings: Settings, mails: int, profile: str | None) -> dict:
    accord = build(settings)
    try:
        caller = platform_caller()
        org = await create_organization(
            accord, NewOrganization(name="Mail probe", max_users=mails + 1), caller=caller
        )
        for k in range(mails):
            new = NewUser(
                email=f"user{k}@probe.example",
                full_name=f"Zoë Probe {k}",
                organization_id=org["id"],
                credential=CredentialMode.INVITE,
            )
            await create_user(accord, new, caller=caller)
        mailer = build_mailer(settings, accord.store)
        profiler = cProfile.Profile() if profile else None
        sent = passes = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        while True:
            delivery = await deliver_outbox(accord, mailer)
            passes += 1
            sent += delivery.sent
            if delivery.sent + delivery.failed + delivery.skipped == 0:
                break
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        await accord.aclose()
    return {
        "mails": mails,
        "sent": sent,
        "passes": passes,
        "cpu_seconds": round(cpu, 3),
        "wall_seconds": round(wall, 3),
        "cpu_ms_per_mail": round(1000 * cpu / max(sent, 1), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mails", type=int, default=400)
    parser.add_argument("--profile", help="write a cProfile of the delivery to this file")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "ACCORD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    port = free_port()
    sink = start_sink(port)
    name, url = fresh_database(args.database_url)
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            settings = Settings(
                database_url=url,
                data_dir=Path(data_dir),
                secret_key=new_key_text(),
                idp="local",
                smtp=SmtpSettings(host="127.0.0.1", port=port),
            )
            report = asyncio.run(measure(settings, args.mails, args.profile))
    finally:
        sink.terminate()
        sink.wait(timeout=30)
        drop_database(args.database_url, name)
    report["load_before"] = [round(x, 2) for x in load_before]
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
