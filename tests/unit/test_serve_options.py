"""``accord serve`` hands its ``ACCORD_SERVE__*`` settings to uvicorn under names uvicorn knows.

Found under a CPU hog: uvicorn's supervisor pings each worker process and restarts one that does
not answer within ``timeout_worker_healthcheck`` (5 s by default); a worker still importing on a
busy machine was killed, and so was its replacement, so ``--workers 2`` never answered."""

from __future__ import annotations

import inspect

import uvicorn

from accord.config import Settings
from accord.entrypoints.cli.service import serve_options


def test_every_serve_option_is_one_uvicorn_takes() -> None:
    accepted = set(inspect.signature(uvicorn.Config).parameters)
    assert set(serve_options(Settings())) <= accepted


def test_a_worker_process_is_given_a_minute_to_start_by_default() -> None:
    assert serve_options(Settings())["timeout_worker_healthcheck"] == 60
    patient = Settings.model_validate({"serve": {"worker_healthcheck_seconds": 300}})
    assert serve_options(patient)["timeout_worker_healthcheck"] == 300
