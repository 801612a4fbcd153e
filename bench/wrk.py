"""wrk for P1: the Lua script that sends unique creates, and the arithmetic on what wrk reports.

Everything here but ``run_wrk`` is pure (tested in tests/unit/test_bench_wrk.py).
"""

from __future__ import annotations

import json
import statistics
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

MARKER = "WRK_JSON "

# Each wrk thread has its own Lua state: ``tid`` (set in setup) keeps e-mails unique across
# threads, ``tag`` across runs. Counters are globals so that ``done`` can read them per thread.
LUA = """
local orgs = {%(orgs)s}
local token = "%(token)s"
local tag = "%(tag)s"
local threads = {}
counter, created, pending, other = 0, 0, 0, 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function request()
  counter = counter + 1
  local id = tag .. "-" .. tid .. "-" .. counter
  local org = orgs[(counter + tid) %% #orgs + 1]
  local body = '{"email": "' .. id .. '@example.com", "full_name": "Bench ' .. id ..
    '", "credential": "invite"}'
  local headers = {["Authorization"] = "Bearer " .. token, ["Idempotency-Key"] = id,
    ["Content-Type"] = "application/json"}
  return wrk.format("POST", "/api/admin/organizations/" .. org .. "/users", headers, body)
end

function response(status, headers, body)
  if status == 201 then created = created + 1
  elseif status == 202 then pending = pending + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local c, p, o = 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created"); p = p + t:get("pending"); o = o + t:get("other")
  end
  io.write(string.format('%(marker)s{"requests": %%d, "duration_us": %%d, "created": %%d, ' ..
    '"pending": %%d, "other": %%d, "timeouts": %%d, "p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, c, p, o, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def lua_script(token: str, orgs: Sequence[str], tag: str) -> str:
    """The script: each request a new e-mail, into the organizations in turn."""
    if not orgs:
        raise ValueError("at least one organization")
    quoted = ", ".join(f'"{org}"' for org in orgs)
    return LUA % {"orgs": quoted, "token": token, "tag": tag, "marker": MARKER}


def parse(stdout: str) -> dict[str, Any]:
    """One run's figures from wrk's output: creates/s (201s only), p50 and p99 in ms."""
    line = next(line for line in stdout.splitlines() if line.startswith(MARKER))
    raw = json.loads(line[len(MARKER) :])
    seconds = raw["duration_us"] / 1e6
    return {
        "creates_per_s": round(raw["created"] / seconds, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 1),
        "p99_ms": round(raw["p99_us"] / 1000, 1),
        "created": raw["created"],
        "pending": raw["pending"],
        "other": raw["other"],
        "timeouts": raw["timeouts"],
    }


def run_wrk(url: str, script: Path, *, connections: int, seconds: float) -> dict[str, Any]:
    """Run wrk (2 threads: it must not take the server's CPU) and parse its report."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{round(seconds)}s", "--timeout", "120s"]
    out = subprocess.run([*command, "-s", str(script), url], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr[-2000:]}")
    return parse(out.stdout)


def key(run: dict[str, Any]) -> tuple[str, str, int, int]:
    return (run["server"], run["idp"], run["concurrency"], run["orgs"])


def medians(runs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One case per (server, IdP, concurrency, organizations): the median of its repeats."""
    groups: dict[tuple[str, str, int, int], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(key(run), []).append(run)
    cases = []
    for (server, idp, concurrency, orgs), group in groups.items():
        case: dict[str, Any] = {"server": server, "idp": idp}
        case |= {"concurrency": concurrency, "orgs": orgs, "repeats": len(group)}
        for figure in ("creates_per_s", "p50_ms", "p99_ms"):
            case[figure] = round(statistics.median(r[figure] for r in group), 1)
        cpu = [r["cpu_ms_per_create"] for r in group if r.get("cpu_ms_per_create") is not None]
        if cpu:  # measured by p1_create: the server's CPU per create, steadier than creates/s
            case["cpu_ms_per_create"] = round(statistics.median(cpu), 2)
        for count in ("created", "pending", "other", "timeouts"):
            case[count] = sum(r[count] for r in group)
        # Fewer answers than connections: a create took longer than the run, and creates/s is
        # a floor (the run measured the ramp, not the steady state).
        case["too_short"] = case["created"] < concurrency * len(group)
        cases.append(case)
    return cases


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def ratios(cases: Sequence[dict[str, Any]], baseline: str = "skeleton") -> dict[str, float | None]:
    """Each server's creates/s over the baseline's in the same case, and one organization's
    over 64 organizations' (the issue's targets: ≥ 0.8 and ≥ 0.9). Where the CPU per create
    was measured, also the baseline's over the server's (``cpu``): the share of the server's
    CPU per create that the baseline needs for the same round trips, which the machine's load
    moves far less than throughput."""
    by = {key(c): c["creates_per_s"] for c in cases}
    cpu = {key(c): c["cpu_ms_per_create"] for c in cases if c.get("cpu_ms_per_create")}
    out: dict[str, float | None] = {}
    for (server, idp, concurrency, orgs), rate in by.items():
        where = f"{idp} C={concurrency}"
        if server != baseline and (base := by.get((baseline, idp, concurrency, orgs))) is not None:
            out[f"{server}/{baseline} {where} orgs={orgs}"] = _ratio(rate, base)
            own = cpu.get((server, idp, concurrency, orgs))
            if own and (theirs := cpu.get((baseline, idp, concurrency, orgs))):
                out[f"{server}/{baseline} cpu {where} orgs={orgs}"] = _ratio(theirs, own)
        if orgs == 1 and (spread := by.get((server, idp, concurrency, 64))) is not None:
            out[f"{server} one-org/64-orgs {where}"] = _ratio(rate, spread)
    return out
