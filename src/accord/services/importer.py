"""Importing existing users from a file, through the normal engine (``create_user``).

Each row gets a stable idempotency key, ``import:<sha256 of the normalized row>``, so a rerun
replays what the first run did instead of doing it again: a row already imported reads
``exists``, a row refused before is refused the same way, an operation left open (the IdP was
down) is rejoined. One result per row is written (``created`` / ``adopted`` / ``exists`` /
``error`` with its code), bad rows do not stop the run, and memory stays bounded: the file is
read as it goes, a few rows at a time run concurrently, results are written as they finish.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import hashlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.emails import normalize_email
from accord.domain.model import OperationState, Role
from accord.domain.slugs import slugify
from accord.services import bulk_import
from accord.services.context import Context
from accord.services.ids import parse_id
from accord.services.organizations import NewOrganization, create_organization
from accord.services.provisioning import NewUser, clean_name, create_user

# A row's e-mail is normalized for its key and again for its request: validation costs
# ~0.2 ms a call (email_validator), a tenth of a set-wise row's whole budget. Cached per
# address (a refusal raises again, uncached).
_normalized = functools.lru_cache(maxsize=4096)(normalize_email)

FIELDS = ("email", "full_name", "organization_id", "organization_name", "role")
ORG_CACHE_LIMIT = 10_000


@dataclass
class ImportSummary:
    """How many rows ended how, and where the per-row results are."""

    results: str
    counts: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"results": self.results, "rows": sum(self.counts.values()), **self.counts}


@dataclass
class _Context:
    accord: Context
    caller: Caller
    default_org: str | None
    max_users: int
    adopt_existing: bool = False
    orgs: dict[str, UUID] = field(default_factory=dict)


# -- reading ---------------------------------------------------------------------------------------


def read_rows(handle: TextIO, name: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line, row) for each data row of a CSV or JSON Lines file; an unreadable row is
    (line, why). The format comes from the file's suffix, else from its first character."""
    suffix = Path(name).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _json_lines(handle)
    if suffix == ".csv":
        return _csv_rows(handle)
    first = handle.read(1)
    handle.seek(0)
    return _json_lines(handle) if first == "{" else _csv_rows(handle)


def _csv_rows(handle: TextIO) -> Iterator[tuple[int, dict[str, Any] | str]]:
    reader = csv.DictReader(handle)
    for row in reader:
        yield reader.line_num, {k.strip().lower(): v for k, v in row.items() if k}


def _json_lines(handle: TextIO) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            yield number, "the line is not JSON"
            continue
        yield number, row if isinstance(row, dict) else "the line is not a JSON object"


# -- one row -------------------------------------------------------------------------------------


def row_key(row: dict[str, Any]) -> str:
    """The row's idempotency key: the same row, however spelled, gets the same key."""
    normalized = {
        "email": _normalized(str(row.get("email") or "")),
        "full_name": " ".join(str(row.get("full_name") or row.get("name") or "").split()),
        "organization_id": str(row.get("organization_id") or "").strip().lower(),
        "organization_name": " ".join(str(row.get("organization_name") or "").split()),
        "role": str(row.get("role") or Role.ORG_USER).strip().lower(),
    }
    digest = hashlib.sha256(json.dumps(normalized, sort_keys=True).encode()).hexdigest()
    return f"import:{digest}"


async def _import_row(ctx: _Context, line: int, row: dict[str, Any] | str) -> dict[str, Any]:
    result = _started(line, row)
    try:
        if isinstance(row, str):
            raise errors.InvalidInput(f"Line {line}: {row}.")
        result |= await _provision(ctx, row)
    except errors.AccordError as exc:
        result |= _failure(exc)
    return result


def _started(line: int, row: dict[str, Any] | str) -> dict[str, Any]:
    return {"line": line, "email": row.get("email") if isinstance(row, dict) else None}


def _failure(exc: errors.AccordError) -> dict[str, Any]:
    """How a row that raised ends in the results."""
    if isinstance(exc, errors.EmailAlreadyExists):
        return {"status": "exists", "message": exc.message}
    if isinstance(exc, errors.OperationPending):
        return {
            "status": "error",
            "code": exc.reason_code,
            "operation_id": exc.operation_id,
            "message": "The IdP is unavailable; the operation goes on. Rerun to see it end.",
        }
    return {"status": "error", "code": exc.code, "message": exc.message}


async def _prepare(ctx: _Context, line: int, row: dict[str, Any] | str) -> bulk_import.Row:
    """The row as ``create_user`` would take it, validated in the same order."""
    if isinstance(row, str):
        raise errors.InvalidInput(f"Line {line}: {row}.")
    full_name = clean_name(str(row.get("full_name") or row.get("name") or ""))
    org_id = await _organization(ctx, row)
    role = _role(row.get("role"))
    ctx.caller.require_organization(org_id)
    request: dict[str, Any] = {
        "email": _normalized(str(row.get("email") or "")),
        "full_name": full_name,
        "organization_id": str(org_id),
        "role": role.value,
        "permissions": [],
        "credential": None,
        "adopt_existing": ctx.adopt_existing,
    }
    return bulk_import.Row(line, row.get("email"), row_key(row), request)


async def _provision(ctx: _Context, row: dict[str, Any]) -> dict[str, Any]:
    key = row_key(row)
    async with ctx.accord.store.transaction() as tx:
        before = await tx.operations.find_by_key(ctx.caller.key, key)
    request = NewUser(
        email=str(row.get("email") or ""),
        full_name=clean_name(str(row.get("full_name") or row.get("name") or "")),
        organization_id=await _organization(ctx, row),
        role=_role(row.get("role")),
        adopt_existing=ctx.adopt_existing,
    )
    outcome = await create_user(ctx.accord, request, caller=ctx.caller, idempotency_key=key)
    user = outcome["user"]
    if before is not None and before.state == OperationState.SUCCEEDED:
        status = "exists"  # imported by an earlier run: replayed, nothing done
    else:
        status = "adopted" if outcome["reused_identity"] else "created"
    return {"email": user["email"], "status": status, "user_id": user["id"]}


def _role(value: Any) -> Role:
    try:
        return Role(str(value or Role.ORG_USER).strip().lower())
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise errors.InvalidInput(f"The role {value!r} is not one of {roles}.") from None


async def _organization(ctx: _Context, row: dict[str, Any]) -> UUID:
    """The row's organization: its id, or the team organization of its name (made if new)."""
    org_id, name = (
        row.get("organization_id"),
        " ".join(str(row.get("organization_name") or "").split()),
    )
    if org_id or (not name and ctx.default_org):
        try:
            return UUID(str(org_id or ctx.default_org).strip())
        except ValueError:
            raise errors.InvalidInput(f"The organization id {org_id!r} is not a UUID.") from None
    if not name:
        raise errors.InvalidInput("The row names no organization (and --org was not given).")
    if name not in ctx.orgs:
        if len(ctx.orgs) >= ORG_CACHE_LIMIT:
            ctx.orgs.clear()
        ctx.orgs[name] = await _find_or_create(ctx, name)
    return ctx.orgs[name]


async def _find_or_create(ctx: _Context, name: str) -> UUID:
    for _ in range(2):
        async with ctx.accord.store.transaction() as tx:
            found = await tx.organizations.by_slug(slugify(name))
        if found is not None:
            return found.id
        new = NewOrganization(name=name, max_users=ctx.max_users)
        try:
            made = await create_organization(ctx.accord, new, caller=ctx.caller, suffix=False)
            return UUID(made["id"])
        except errors.OrganizationExists:
            continue  # another row created it a moment ago: look it up again
    raise errors.OrganizationExists(f"The organization {name!r} could not be found or created.")


# -- the whole file ------------------------------------------------------------------------------


async def import_users(
    accord: Context,
    path: Path,
    *,
    caller: Caller,
    results: Path | None = None,
    default_org: str | None = None,
    parallelism: int = 4,
    batch_size: int = 500,
    max_users: int = 10,
    adopt_existing: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Provision every row of ``path``; write one JSON line per row to ``results``.

    An IdP account that accord did not create is reported as ``identity_exists`` unless
    ``adopt_existing``: then it is linked as it is (its password and name untouched, no mail).

    On an IdP with a bulk create (the built-in one) rows go ``batch_size`` at a time through
    ``services/bulk_import.py``; the rows it leaves, every row on other IdPs, and every row with
    ``batch_size=0``, go one by one through the engine, ``parallelism`` at a time.
    """
    caller.require_platform()
    if default_org is not None:
        default_org = str(parse_id(default_org, "--org"))
    results = results or path.with_name(path.name + ".results.jsonl")
    ctx = _Context(accord, caller, default_org, max_users, adopt_existing)
    summary = ImportSummary(str(results))
    gate = asyncio.Semaphore(max(1, parallelism))

    async def one(line: int, row: dict[str, Any] | str) -> dict[str, Any]:
        async with gate:
            return await _import_row(ctx, line, row)

    set_wise = batch_size > 0 and await bulk_import.available(accord)
    size = max(1, batch_size) if set_wise else parallelism * 8

    async def run(chunk: list[tuple[int, dict[str, Any] | str]]) -> list[dict[str, Any]]:
        if not set_wise:
            return list(await asyncio.gather(*(one(n, r) for n, r in chunk)))
        return await _set_wise(ctx, chunk, one)

    with path.open(newline="", encoding="utf-8-sig") as source, results.open("w") as out:
        rows = read_rows(source, path.name)
        while chunk := list(islice(rows, size)):
            for outcome in await run(chunk):
                out.write(json.dumps(outcome, default=str) + "\n")
                summary.counts[outcome["status"]] += 1
            if progress is not None:
                progress(len(chunk))
    return summary


async def _set_wise(
    ctx: _Context,
    chunk: list[tuple[int, dict[str, Any] | str]],
    one: Callable[[int, dict[str, Any] | str], Awaitable[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """One batch set-wise; the rows it leaves one by one; the results in file order."""
    answers: dict[int, dict[str, Any]] = {}
    prepared = []
    for line, row in chunk:
        try:
            prepared.append(await _prepare(ctx, line, row))
        except errors.AccordError as exc:
            answers[line] = _started(line, row) | _failure(exc)
    outcome = await bulk_import.create_batch(ctx.accord, ctx.caller, prepared)
    answers |= outcome.done
    left = {row.line for row in outcome.left}
    alone = [(n, r) for n, r in chunk if n in left]
    done = await asyncio.gather(*(one(n, r) for n, r in alone))
    for (line, _), answer in zip(alone, done, strict=True):
        answers[line] = answer
    return [answers[line] for line, _ in chunk]
