"""The arithmetic of the P1 benchmark and run_all: what wrk reports becomes the right figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from bench import profile_p1, run_all, wrk

WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:8000
  2 threads and 16 connections
WRK_JSON {"requests": 130, "duration_us": 5000000, "created": 120, "pending": 6, \
"other": 4, "timeouts": 1, "p50_us": 41250, "p99_us": 98765}
"""


def run(server: str, orgs: int, rate: float, *, idp: str = "local", c: int = 16) -> dict:
    figures = {"creates_per_s": rate, "p50_ms": rate, "p99_ms": 2 * rate}
    counts = {"created": 1, "pending": 0, "other": 0, "timeouts": 0}
    return {"server": server, "idp": idp, "concurrency": c, "orgs": orgs} | figures | counts


def test_the_script_sends_unique_invites_into_the_given_organizations() -> None:
    script = wrk.lua_script("tok123", ["org-a", "org-b"], "run7")

    assert '{"org-a", "org-b"}' in script
    assert '"Bearer " .. token' in script and 'local token = "tok123"' in script
    assert 'tag .. "-" .. tid .. "-" .. counter' in script  # the e-mail and Idempotency-Key
    assert '"credential": "invite"' in script
    assert "%(" not in script  # every placeholder filled


def test_a_script_needs_an_organization() -> None:
    with pytest.raises(ValueError):
        wrk.lua_script("tok", [], "t")


def test_only_created_users_count_as_creates() -> None:
    figures = wrk.parse(WRK_OUTPUT)

    assert figures["creates_per_s"] == 24.0  # 120 answers 201 in 5 s, not 130 requests
    assert (figures["p50_ms"], figures["p99_ms"]) == (41.2, 98.8)
    assert (figures["pending"], figures["other"], figures["timeouts"]) == (6, 4, 1)


def test_repeats_give_their_median_and_counts_add_up() -> None:
    runs = [run("accord", 1, rate) for rate in (10.0, 30.0, 20.0)]

    [case] = wrk.medians(runs)

    assert case["creates_per_s"] == 20.0 and case["p99_ms"] == 40.0
    assert case["repeats"] == 3 and case["created"] == 3
    assert case["too_short"]  # 3 answers at C=16: the run ended before a round trip


def test_a_run_with_a_round_of_answers_is_long_enough() -> None:
    [case] = wrk.medians([run("skeleton", 1, 50.0) | {"created": 16}])

    assert not case["too_short"]


def test_cpu_per_create_is_the_median_and_compared_as_the_baseline_over_the_server() -> None:
    runs = [run("accord", 1, 10.0) | {"cpu_ms_per_create": ms} for ms in (9.0, 12.0, 8.0)]
    runs += [run("skeleton", 1, 40.0) | {"cpu_ms_per_create": 3.0}]
    runs += [run("accord", 64, 10.0) | {"cpu_ms_per_create": None}]  # made no user: no figure
    runs += [run("skeleton", 64, 40.0) | {"cpu_ms_per_create": 3.0}]

    cases = {(c["server"], c["orgs"]): c for c in wrk.medians(runs)}
    ratios = wrk.ratios(list(cases.values()))

    assert cases["accord", 1]["cpu_ms_per_create"] == 9.0
    assert "cpu_ms_per_create" not in cases["accord", 64]
    assert ratios["accord/skeleton cpu local C=16 orgs=1"] == 0.333  # 3 ms of its 9 ms
    assert "accord/skeleton cpu local C=16 orgs=64" not in ratios
    assert "skeleton/skeleton cpu local C=16 orgs=1" not in ratios


def test_ratios_compare_servers_and_tenancy_within_one_case() -> None:
    runs = [run("skeleton", 1, 100.0), run("skeleton", 64, 80.0)]
    runs += [run("accord", 1, 20.0), run("accord", 64, 40.0)]
    runs += [run("accord", 1, 5.0, idp="keycloak"), run("skeleton", 1, 0.0, idp="keycloak")]
    cases = wrk.medians(runs)

    ratios = wrk.ratios(cases)

    assert ratios["accord/skeleton local C=16 orgs=1"] == 0.2
    assert ratios["accord/skeleton local C=16 orgs=64"] == 0.5
    assert ratios["accord one-org/64-orgs local C=16"] == 0.5
    assert ratios["skeleton one-org/64-orgs local C=16"] == 1.25
    assert ratios["accord/skeleton keycloak C=16 orgs=1"] is None  # no baseline, no ratio
    assert "accord one-org/64-orgs keycloak C=16" not in ratios


def test_run_all_finds_the_benchmarks_but_not_their_helpers() -> None:
    names = run_all.benchmarks()

    assert names[0] == "p1_create" and {"cli_start", "reconcile", "soak"} <= set(names)
    assert not set(names) & run_all.HELPERS
    assert run_all.benchmarks(["cli_start"]) == ["cli_start"]
    assert run_all.arguments("p1_create", quick=True) == ["--quick"]


def test_run_all_reads_the_object_a_benchmark_printed_last() -> None:
    printed = 'settling...\n{"a": 1}\n{\n  "b": {\n    "c": 2\n  }\n}\n'

    assert run_all.last_json_object(printed) == {"b": {"c": 2}}
    assert run_all.last_json_object('{"a": 1}') == {"a": 1}


def test_a_profile_counts_busy_samples_and_accords_own_functions() -> None:
    base = "MainThread;run (uvicorn/main.py:1)"
    create = "create_user (accord/services/provisioning.py"
    collapsed = "\n".join(
        [
            f"{base};{create}:9);execute (sqlalchemy/engine/base.py:3) 30",
            f"{base};{create}:12) 10",
            f"{base};EpollSelector.select (selectors.py:4) 60",
        ]
    )

    top = profile_p1.top_frames(collapsed, 5)

    assert top["busy_samples"] == 40  # the loop's 60 idle samples left out
    assert top["self_percent"][0] == ["execute (sqlalchemy/engine/base.py)", 75.0]
    assert top["accord_total_percent"] == [["create_user (accord/services/provisioning.py)", 100.0]]


def test_p3_says_whether_the_idp_latency_was_hidden_by_concurrency() -> None:
    from argparse import Namespace

    from bench import p3_latency

    def p3_run(server: str, latency: float, rate: float) -> dict:
        return {"server": server, "latency_ms": latency} | run(server, 64, rate)

    runs = [
        p3_run("skeleton", 0, 50.0),
        p3_run("accord", 0, 20.0),
        p3_run("skeleton", 200, 40.0),
        p3_run("accord", 200, 19.0),
        p3_run("accord", 200, 21.0),  # a second repeat: the median is taken
    ]
    args = Namespace(concurrency=200, latency_ms=200.0, accord=[("accord", None)])

    summary = p3_latency.summarize(runs, args)

    assert summary["cases"]["accord latency=200ms"]["creates_per_s"] == 20.0
    assert summary["bound_creates_per_s"] == 250.0  # 200 connections / (4 calls x 0.2 s)
    assert summary["ratios"]["accord slow/fast"] == 1.0
    assert summary["ratios"]["accord over_bound"] == 0.08
    assert summary["ratios"]["accord over_issue_target"] == 0.02
    assert summary["ratios"]["accord/skeleton latency=200ms"] == 0.5


@pytest.mark.parametrize("name", run_all.benchmarks())
def test_every_benchmark_accepts_its_quick_arguments(name: str) -> None:
    """run_all --quick passes each benchmark its quick arguments (``--quick`` when it has no
    entry): one that does not know them fails with a usage error, and its figure is lost."""
    script = Path(run_all.BENCH) / f"{name}.py"
    shown = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, check=True
    ).stdout
    options = {a for a in run_all.arguments(name, quick=True) if a.startswith("--")}
    assert options <= set(re.findall(r"--[a-z][a-z0-9-]*", shown))
