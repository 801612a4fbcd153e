"""P1: creates over HTTP (wrk), accord next to the skeleton baseline, in the same run.

    uv run python bench/p1_create.py [--quick] [--seconds 20] [--repeat 3]
        [--accord LABEL=CHECKOUT ...] [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Each server runs in its own process: ``accord serve`` (one process, with its worker, mail going
to a local sink) on the built-in IdP and on the Keycloak emulator (``accord emulate keycloak``,
0 ms latency, one emulator per server), and ``bench/skeleton.py`` beside each. wrk sends
``POST /api/admin/organizations/{id}/users`` with ``credential: invite``, a platform token and a
new e-mail per request, at C=16 and C=64, into one organization or spread over 64. The servers
take turns within each case, so every ratio compares figures measured minutes apart at most.

Prints one JSON object: each case's creates/s (201 answers only), p50 and p99 (medians over
``--repeat``), the ratios (server/skeleton, one-org/64-orgs) and the load average.
``--accord main=/work/main --accord speed=/work/wt-speed`` measures several checkouts at once
(each with its own synced ``.venv``); by default, this checkout. Its databases are dropped at
the end.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import skeleton, wrk
from tests.mailbox import Inbox, SmtpServer, free_port

from accord.adapters.sealing import new_key_text
from accord.emulators import keycloak

ROOT = Path(__file__).resolve().parents[1]
IDPS = ("local", "keycloak")
CONCURRENCY = (16, 64)
ORGS = (1, 64)
STARTED: set[int] = set()  # the server processes running now
QUIET = 0.05  # CPU seconds per second below which a process is idle
T = TypeVar("T")


def cpu_seconds(pids: set[int]) -> float:
    """User + system CPU time of these processes (Linux ``/proc``)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def settle(timeout: float = 180, window: float = 0.5, step: float = 0.1) -> None:
    """Wait until every server has been idle for ``window`` seconds: requests wrk gave up on
    still run after it stops (and accord's worker mails the invitations), and they must not
    take the CPU from the next server's turn. The window slides by ``step``, so the wait ends
    at most ``step`` after the servers have been quiet for a whole window."""
    deadline = time.monotonic() + timeout
    samples = collections.deque([cpu_seconds(STARTED)], maxlen=round(window / step) + 1)
    while time.monotonic() < deadline:
        time.sleep(step)  # sampling CPU time: there is no event for "idle"
        samples.append(cpu_seconds(STARTED))
        quiet = samples[-1] - samples[0] < QUIET * window * max(1, len(STARTED))
        if quiet and len(samples) == samples.maxlen:
            return


@contextmanager
def database(server_url: str, label: str) -> Iterator[str]:
    """A new database on the machine's PostgreSQL, dropped afterwards."""
    name = f"accord_p1_{label}_{uuid.uuid4().hex[:8]}"
    admin = ["psql", server_url, "-q", "-v", "ON_ERROR_STOP=1", "-c"]
    subprocess.run([*admin, f'CREATE DATABASE "{name}"'], check=True, capture_output=True)
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        subprocess.run([*admin, drop], check=False, capture_output=True)


@contextmanager
def process(
    command: list[str], ready_url: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """A server process, once ``ready_url`` answers 200; terminated afterwards."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
        yield from _serving(proc, command, ready_url, log)


def _serving(
    proc: subprocess.Popen, command: list[str], ready_url: str, log: Any
) -> Iterator[subprocess.Popen]:
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"{command} did not start: {log.read().decode()[-2000:]}")
            try:
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)  # a server process coming up; nothing to wait on but its port
        STARTED.add(proc.pid)
        yield proc
    finally:
        STARTED.discard(proc.pid)
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def emulator(stack: ExitStack) -> str:
    port = free_port()
    command = [sys.executable, "-m", "accord", "emulate", "keycloak", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    stack.enter_context(process(command, f"{url}/__faults"))
    return url


def accord_env(checkout: Path, db_url: str, idp: str, smtp_port: int, kc_url: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    env |= {
        "ACCORD_DATABASE_URL": db_url,
        "ACCORD_SECRET_KEY": new_key_text(),
        "ACCORD_DATA_DIR": tempfile.mkdtemp(prefix="accord-p1-"),
        "ACCORD_SMTP__HOST": "127.0.0.1",
        "ACCORD_SMTP__PORT": str(smtp_port),
        "ACCORD_IDP": idp,
        "VIRTUAL_ENV": str(checkout / ".venv"),
    }
    if kc_url is not None:
        env |= {
            "ACCORD_KEYCLOAK__SERVER_URL": kc_url,
            "ACCORD_KEYCLOAK__REALM": keycloak.DEFAULT_REALM,
            "ACCORD_KEYCLOAK__CLIENT_ID": keycloak.DEFAULT_CLIENT_ID,
            "ACCORD_KEYCLOAK__CLIENT_SECRET": keycloak.DEFAULT_CLIENT_SECRET,
        }
    return env


def start_accord(stack: ExitStack, checkout: Path, env: dict[str, str]) -> dict[str, Any]:
    """``accord serve`` from ``checkout``; returns its URL, a platform token, 64 organizations.

    ``accord serve`` applies the migrations before it listens, so the token (which needs the
    tables) is made once it answers."""
    python = str(checkout / ".venv" / "bin" / "python")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [python, "-m", "accord", "serve", "--port", str(port)]
    server = stack.enter_context(process(command, f"{url}/readyz", env))
    made = subprocess.run(
        [python, "-m", "accord", "tokens", "create", "--platform", "--json", "--name", "p1"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    token = json.loads(made.stdout)["token"]
    headers = {"Authorization": f"Bearer {token}"}
    with (
        httpx.Client(base_url=url, headers=headers, timeout=60) as client,
        ThreadPoolExecutor(8) as pool,
    ):

        def organization(i: int) -> str:
            body = {"name": f"Bench {i}", "max_users": 100_000}
            return (
                client.post("/api/admin/organizations", json=body).raise_for_status().json()["id"]
            )

        orgs = list(pool.map(organization, range(max(ORGS))))
    target = {"url": url, "token": token, "orgs": orgs, "pid": server.pid}
    return target | {"db": env["ACCORD_DATABASE_URL"], "users": "users"}


def start_skeleton(stack: ExitStack, db_url: str, kc_url: str | None) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(ROOT / "bench" / "skeleton.py"), "--database-url", db_url]
    command += ["--port", str(port)] + (["--keycloak", kc_url] if kc_url else [])
    server = stack.enter_context(process(command, f"{url}/readyz"))
    orgs = [str(uuid.uuid4()) for _ in range(max(ORGS))]
    with psycopg.connect(db_url, autocommit=True) as conn:
        for org in orgs:
            conn.execute("INSERT INTO skeleton_orgs (id) VALUES (%s)", (org,))
    target = {"url": url, "token": skeleton.TOKEN, "orgs": orgs, "pid": server.pid}
    return target | {"db": db_url, "users": "skeleton_users"}


def measure(target: dict[str, Any], tmp: Path, *, orgs: int, connections: int, seconds: float):
    """One wrk run against ``target``, and the server's CPU per create: its process's CPU
    time from the start of the run until it is idle again (the creates wrk gave up on have
    ended, and accord's worker has mailed the invitations), over the users it made meanwhile
    (counted in its database, so those answered after wrk stopped count too)."""
    settle()
    tag = uuid.uuid4().hex[:10]
    script = tmp / f"{tag}.lua"
    script.write_text(wrk.lua_script(target["token"], target["orgs"][:orgs], tag))
    cpu, users = cpu_seconds({target["pid"]}), count_users(target)
    figures = wrk.run_wrk(target["url"], script, connections=connections, seconds=seconds)
    settle()
    made = count_users(target) - users
    spent = cpu_seconds({target["pid"]}) - cpu
    return figures | {"cpu_ms_per_create": round(1000 * spent / made, 2) if made else None}


def count_users(target: dict[str, Any]) -> int:
    with psycopg.connect(target["db"], autocommit=True) as conn:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(target["users"]))
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def side_by_side(stack: ExitStack, starters: dict[str, Callable[[ExitStack], T]]) -> dict[str, T]:
    """Each starter run in a thread of its own (starting is mostly waiting on a process to
    listen), with an ExitStack of its own; ``stack`` closes them all, also side by side, even
    if a starter failed."""
    stacks = {name: ExitStack() for name in starters}
    stack.callback(_close_all, stacks.values())
    with ThreadPoolExecutor(len(starters)) as pool:
        futures = {name: pool.submit(start, stacks[name]) for name, start in starters.items()}
    return {name: future.result() for name, future in futures.items()}


def _close_all(stacks: Iterable[ExitStack]) -> None:
    stacks = list(stacks)
    with ThreadPoolExecutor(len(stacks)) as pool:
        list(pool.map(ExitStack.close, stacks))


def start_all(stack: ExitStack, args: argparse.Namespace, idp: str, smtp_port: int) -> dict:
    """The skeleton and each accord checkout on ``idp``, each with its database (and, on
    Keycloak, its own emulator, under ``emulator``), started side by side."""

    def skeleton_target(own: ExitStack) -> dict[str, Any]:
        db = own.enter_context(database(args.database_url, "skeleton"))
        kc = emulator(own) if idp == "keycloak" else None
        return start_skeleton(own, db, kc) | {"emulator": kc}

    def accord_target(label: str, checkout: Path) -> Callable[[ExitStack], dict[str, Any]]:
        def start(own: ExitStack) -> dict[str, Any]:
            db = own.enter_context(database(args.database_url, label))
            kc = emulator(own) if idp == "keycloak" else None
            env = accord_env(checkout, db, idp, smtp_port, kc)
            return start_accord(own, checkout, env) | {"emulator": kc}

        return start

    starters = {"skeleton": skeleton_target}
    starters |= {label: accord_target(label, checkout) for label, checkout in args.accord}
    return side_by_side(stack, starters)


def load(args: argparse.Namespace, case: dict[str, Any]) -> dict[str, Any]:
    return {"connections": case["concurrency"], "seconds": args.seconds}


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    runs: list[dict[str, Any]] = []
    served: dict[str, dict[str, str]] = {}  # per IdP: the commit each checkout served
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        sink = SmtpServer(Inbox(), free_port())  # invitations are mailed by accord's worker
        sink.start()
        stack.callback(sink.stop)
        for idp in IDPS:
            with ExitStack() as servers:  # this IdP's processes and databases end with it
                served[idp] = {label: describe(checkout) for label, checkout in args.accord}
                targets = start_all(servers, args, idp, sink.port)
                for target in targets.values():  # first creates: tokens, caches, plans
                    measure(target, tmp, orgs=64, connections=4, seconds=args.warmup)
                # Servers take turns within a case and the organization counts alternate
                # within a repeat: load that drifts during the run falls on all alike.
                for concurrency, _, orgs in itertools.product(
                    CONCURRENCY, range(args.repeat), ORGS
                ):
                    for server, target in targets.items():
                        case = {"server": server, "idp": idp, "concurrency": concurrency}
                        case |= {"orgs": orgs}
                        runs.append(case | measure(target, tmp, orgs=orgs, **load(args, case)))
                        print(json.dumps(runs[-1]), file=sys.stderr)
    cases = wrk.medians(runs)
    return {
        "benchmark": "p1_create",
        "seconds_per_run": args.seconds,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "checkouts": served,
        "cases": cases,
        "ratios": wrk.ratios(cases),
    }


def describe(checkout: Path) -> str:
    """The commit a checkout serves, ``+dirty`` when its files differ from it."""
    git = ["git", "-C", str(checkout)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "src"], capture_output=True)
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def default_database_url() -> str:
    """The machine's PostgreSQL server, as the tests find it."""
    fallback = "postgresql://postgres@127.0.0.1:5432/postgres"
    return os.environ.get("ACCORD_TEST_DATABASE_URL", fallback)


def checkout_arg(text: str) -> tuple[str, Path]:
    label, _, path = text.partition("=")
    if not path or label == "skeleton":
        raise argparse.ArgumentTypeError("LABEL=CHECKOUT, e.g. speed=/work/wt-speed")
    return label, Path(path).resolve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s per run, 1 repeat")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--accord", type=checkout_arg, action="append", default=[])
    parser.add_argument("--database-url", default=default_database_url())
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.repeat, args.warmup = 3, 1, 1
    args.accord = args.accord or [("accord", ROOT)]
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
