"""The bulk user export: ``POST /api/v2/jobs/users-exports``, its job, and the gzipped NDJSON
file at the job's ``location`` (docs/idp/auth0.md#bulk-user-export). Jobs and files are kept on
the ``Auth0Tenant``."""

from __future__ import annotations

import gzip
import json
import re
import secrets
from typing import TYPE_CHECKING, Any

from accord.emulators.auth0.wire import api_error, now, only

if TYPE_CHECKING:
    from accord.emulators.auth0.tenant import Auth0Tenant


def start(tenant: Auth0Tenant, body: dict[str, Any]) -> dict[str, Any]:
    """Create an export job and its file; the job as the API answers it."""
    only(body, frozenset({"connection_id", "format", "limit", "fields"}))
    connection_id = body.get("connection_id")
    if connection_id not in (None, tenant.connection_id):
        raise api_error(400, "The connection does not exist.", "inexistent_connection")
    if body.get("format", "csv") != "json":
        raise api_error(400, "The emulator exports format 'json' (NDJSON) only.", "invalid_body")
    fields = body.get("fields") or [{"name": n} for n in ("user_id", "email", "name")]
    users = [s.profile for s in tenant.users.values()]
    if connection_id:
        users = [p for p in users if p["identities"][0]["connection"] == tenant.connection]
    job_id = "job_" + secrets.token_hex(8)
    tenant.export_files[job_id] = _ndjson_gz(users[: body.get("limit") or None], fields)
    job = {"type": "users_export", "status": "pending", "format": "json", "fields": fields}
    job |= {"created_at": now(), "id": job_id}
    if connection_id:
        job |= {"connection_id": connection_id, "connection": tenant.connection}
    tenant.jobs[job_id] = {**job, "polls": 0}
    return job


def poll(tenant: Auth0Tenant, job_id: str, base_url: str) -> dict[str, Any]:
    """The job's state: "processing" for ``tenant.export_polls`` polls, then "completed"."""
    job = tenant.jobs.get(job_id)
    if job is None:
        raise api_error(404, "The job does not exist.", "inexistent_job")
    job["polls"] += 1
    public = {k: v for k, v in job.items() if k != "polls"}
    if job["polls"] <= tenant.export_polls:
        return {**public, "status": "processing", "percentage_done": 50}
    if tenant.export_fails:
        return {**public, "status": "failed", "status_details": "the emulator was told to fail"}
    location = f"{base_url.rstrip('/')}/user-exports/{job_id}/emulator.json.gz"
    done = {"status": "completed", "location": location, "percentage_done": 100}
    return {**public, **done, "time_left_seconds": 0}


def _ndjson_gz(users: list[dict[str, Any]], fields: list[dict[str, str]]) -> bytes:
    lines = []
    for profile in users:
        record = {f.get("export_as") or f["name"]: _pluck(profile, f["name"]) for f in fields}
        lines.append(json.dumps({k: v for k, v in record.items() if v is not None}))
    return gzip.compress(("\n".join(lines) + "\n").encode() if lines else b"")


def _pluck(record: Any, path: str) -> Any:
    """``identities[0].connection`` style paths; None when absent."""
    for key in re.findall(r"[^.\[\]]+", path):
        if isinstance(record, list) and key.isdigit() and int(key) < len(record):
            record = record[int(key)]
        elif isinstance(record, dict) and key in record:
            record = record[key]
        else:
            return None
    return record
