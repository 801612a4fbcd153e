"""A py-spy profile of ``accord serve`` during one P1 run: the top frames, as one JSON object.

    uv run python bench/profile_p1.py [--idp local|keycloak] [--seconds 20] [--concurrency 16]
        [--orgs 1] [--accord LABEL=CHECKOUT] [--top 15] [--raw stacks.txt]

Starts accord as ``p1_create`` does (its own database, dropped at the end), sends creates with
wrk, and samples the server with ``py-spy record --nonblocking`` (it needs ptrace: run as root or
with ``kernel.yama.ptrace_scope=0``). ``self_percent``: where the samples were (leaf frames);
``accord_total_percent``: accord's own functions with their callees. Idle samples (the event
loop's poll, idle pool threads) are left out.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import p1_create
from tests.mailbox import Inbox, SmtpServer, free_port

# Leaf frames that wait: the event loop's poll, idle thread-pool threads.
IDLE = (
    "Selector.select (selectors.py",
    "_worker (concurrent/futures/thread.py",
    "wait (threading.",
)
# Frames every sample shares (the CLI, uvicorn, the loop): their totals say nothing.
SHELL = ("accord/__main__.py", "accord/entrypoints/cli/")


def frame_name(frame: str) -> str:
    """``function (file.py:12)`` without the line: one entry per function."""
    return frame.rsplit(":", 1)[0] + ")" if frame.endswith(")") and ":" in frame else frame


def top_frames(collapsed: str, top: int) -> dict[str, Any]:
    """Self and total shares of the busiest functions in py-spy's collapsed (raw) output."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [frame_name(f) for f in stack.split(";")]
        if any(idle in frames[-1] for idle in IDLE):
            continue
        samples += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            if "(accord/" in frame and not any(shell in frame for shell in SHELL):
                total[frame] += int(count)

    def share(counter: collections.Counter[str]) -> list[list[Any]]:
        return [[f, round(100 * n / samples, 1)] for f, n in counter.most_common(top)]

    return {
        "busy_samples": samples,
        "self_percent": share(own),
        "accord_total_percent": share(total),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idp", choices=p1_create.IDPS, default="local")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--orgs", type=int, default=1)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks in this file")
    parser.add_argument("--accord", type=p1_create.checkout_arg, default=("accord", p1_create.ROOT))
    parser.add_argument("--database-url", default=p1_create.default_database_url())
    args = parser.parse_args()
    label, checkout = args.accord
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        sink = SmtpServer(Inbox(), free_port())
        sink.start()
        stack.callback(sink.stop)
        db = stack.enter_context(p1_create.database(args.database_url, label))
        kc = p1_create.emulator(stack) if args.idp == "keycloak" else None
        env = p1_create.accord_env(checkout, db, args.idp, sink.port, kc)
        target = p1_create.start_accord(stack, checkout, env)
        p1_create.measure(target, Path(tmp), orgs=64, connections=4, seconds=2)  # warm-up
        out = Path(tmp) / "profile.txt"
        record = ["py-spy", "record", "--nonblocking", "--format", "raw", "-o", str(out)]
        spy = subprocess.Popen(
            [*record, "--pid", str(target["pid"]), "--duration", str(args.seconds + 2)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        figures = p1_create.measure(
            target, Path(tmp), orgs=args.orgs, connections=args.concurrency, seconds=args.seconds
        )
        _, spy_err = spy.communicate(timeout=120)
        if spy.returncode != 0 or not out.exists():
            raise SystemExit(f"py-spy failed ({spy.returncode}): {spy_err.decode()[-2000:]}")
        if args.raw:
            args.raw.write_text(out.read_text())
        report = {"benchmark": "profile_p1", "server": label, "idp": args.idp}
        report |= {"concurrency": args.concurrency, "orgs": args.orgs, "run": figures}
        report |= {"load": [round(x, 2) for x in os.getloadavg()]}
        print(json.dumps(report | top_frames(out.read_text(), args.top), indent=2))


if __name__ == "__main__":
    main()
