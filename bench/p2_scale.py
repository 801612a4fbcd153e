"""Create latency with 1,000,000 existing users against 1,000 (issue 12, P2), and the plans.

    uv run python bench/p2_scale.py [--quick] [--users 1000000] [--small 1000]
        [--creates 100] [--rounds 9] [--database-url postgresql://postgres@127.0.0.1/postgres]

Two scratch databases on the server (bench/reconcile.py's ``fresh_database``), built-in IdP:
one with ``--small`` existing users, one with ``--users``. Both are seeded set-wise in SQL
(``generate_series``, no rows through this process) with what a create leaves behind, in the
shapes a real create writes (one was run in a scratch database and its rows copied): per user
a ``users`` row, its ``local_identities`` identity and ``idp_links`` link, one membership in
one of N/100 team organizations (100 members each, room for more), a succeeded
``create_user`` operation with its idempotency key and result, its two audit events
(``create_user.started``, ``user.created``), its two change events (``user.created``,
``membership.added``, positions assigned, ``change_feed_head`` at the last) with their
``subject_versions`` documents, its sent invitation in ``outbox``; per organization its
``organization.created`` audit and change event. ``--open-operations`` adds that many open
``create_user`` operations (claimed, leased: creates in flight, or left by a crash as in P4)
in organizations the rounds do not use (operations rows only). Then ``ANALYZE``.

**Latency**: ``--rounds`` rounds alternating small, large, small, large…; each round is
``--creates`` creates one at a time (``create_user`` through accord's own engine in this
process, ``credential: invite``, a new address and idempotency key each, into an existing
seeded organization with room: a different one each round). Per round p50/p90/p99; the
figures are medians over the rounds; ``p50_ratio`` is large/small (target ≤ 1.15); short
rounds, so that both databases see the same load of a shared machine. ``pooled_p50_ratio``:
the same from the p50 of all the creates of each database. Next to
them, per create, the database's shared-buffer misses and hits (``pg_stat_database``
``blks_read``/``blks_hit``; approximate, a backend flushes them at most once a second), and
the database's size against ``shared_buffers``: what a larger database costs even when every
statement is an index lookup (deeper B-trees, leaf pages not in the buffer cache).

**Plans**: every SQL statement of one more create on the large database is captured (at
psycopg's cursor: ``statements.captured_statements``) and explained twice in a transaction
that is rolled back: ``EXPLAIN (FORMAT JSON)`` with its own parameters (the custom plan a
first execution gets) and, because psycopg prepares a statement from its fifth execution on
a connection and PostgreSQL may then switch to a *generic* plan (parameters unknown), also
``PREPARE`` + ``plan_cache_mode = force_generic_plan`` + ``EXPLAIN EXECUTE``. A plan is
flagged when any node is a Seq Scan, or an index scan without an index condition, on a table
of more than 10,000 rows, or a Sort/Hash/Aggregate fed more than 10,000 estimated rows. (An
index scan without a condition counts by the index's own size: a partial index such as
``ix_operations_open`` holds only open operations.) A statement is an index lookup when its
custom plan is not flagged and its generic plan either is not flagged or costs more than the
custom one by over 10 % (``plan_cache_mode = auto`` then keeps planning custom plans:
``generic_may_be_used`` false). ``all_index_lookups``: every statement is.

Prints one JSON object: the sizes, seeding seconds, per-database latency, the ratio, the plans
(label, node types, flags), ``all_index_lookups``, the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconcile import drop_database, fresh_database  # bench/ is on sys.path
from statements import captured_statements

from accord.adapters.db.engine import sync_engine
from accord.adapters.sealing import new_key_text
from accord.bootstrap import Accord, build
from accord.config import Settings
from accord.domain.callers import Caller
from accord.domain.model import CredentialMode
from accord.services.provisioning import NewUser, create_user

PLATFORM = Caller.platform("bench", "bench@platform.test")
SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_RATIO = 1.15
PER_ORG = 100
SEATS = 100_000  # every seeded organization has room for all the rounds' creates
BIG_TABLE = 10_000

# Ids are derived from the row number (users n, organizations k = (n-1)/100 + 1, operations n),
# so every table agrees without a join. The shapes are those of a real create (see above).
_USER = "md5('u' || n)::uuid"
_ORG_OF_USER = f"md5('o' || ((n - 1) / {PER_ORG} + 1))::uuid"
_OP = "md5('p' || n)::uuid"
_AT = "now() - interval '30 days' + n * interval '1 ms'"
_USER_DOC = f"""jsonb_build_object(
    'id', {_USER}, 'email', 'user' || n || '@bench.example', 'status', 'pending',
    'full_name', 'User ' || n, 'created_at', {_AT}, 'created_by', 'bench', 'updated_at', {_AT},
    'organizations', jsonb_build_array(jsonb_build_object(
        'role', 'org_user', 'permissions', '[]'::jsonb, 'organization_id', {_ORG_OF_USER})),
    'former_email', null, 'is_platform_admin', false, 'require_password_change', false)"""
_MEMBER_DOC = f"""jsonb_build_object('role', 'org_user', 'user_id', {_USER},
    'permissions', '[]'::jsonb, 'organization_id', {_ORG_OF_USER})"""
_ORG_DOC = """jsonb_build_object(
    'id', md5('o' || k)::uuid, 'kind', 'team', 'slug', 'org-' || k, 'status', 'trial',
    'members', 0, 'version', 1, 'settings', '{}'::jsonb, 'max_users', :seats,
    'plan_type', 'trial', 'created_at', now() - interval '31 days',
    'updated_at', now() - interval '31 days', 'display_name', 'Org ' || k, 'owner_user_id', null)"""

_USER_CHANGED = "{created_at,created_by,email,full_name,id,is_platform_admin,organizations," + (
    "require_password_change,status}"
)
_ORG_CHANGED = "{created_at,display_name,id,kind,max_users,members,owner_user_id,plan_type," + (
    "settings,slug,status}"
)

SEED = [
    """INSERT INTO organizations (id, slug, display_name, kind, max_users, created_at, updated_at)
       SELECT md5('o' || k)::uuid, 'org-' || k, 'Org ' || k, 'team', :seats,
              now() - interval '31 days', now() - interval '31 days'
       FROM generate_series(1, :orgs) AS k""",
    f"""INSERT INTO users (id, email, full_name, status, created_by, version,
                           created_at, updated_at)
       SELECT {_USER}, 'user' || n || '@bench.example', 'User ' || n, 'pending', 'bench', 2,
              {_AT}, {_AT}
       FROM generate_series(1, :n) AS n""",
    f"""INSERT INTO local_identities (id, email, full_name, accord_user_id, created_at,
                                      updated_at)
       SELECT {_USER}::text, 'user' || n || '@bench.example', 'User ' || n, {_USER}::text,
              {_AT}, {_AT}
       FROM generate_series(1, :n) AS n""",
    f"""INSERT INTO idp_links (user_id, provider, remote_id, created_by_accord, created_at)
       SELECT {_USER}, 'local', {_USER}::text, true, {_AT}
       FROM generate_series(1, :n) AS n""",
    f"""INSERT INTO memberships (user_id, organization_id, role, created_at)
       SELECT {_USER}, {_ORG_OF_USER}, 'org_user', {_AT}
       FROM generate_series(1, :n) AS n""",
    f"""INSERT INTO operations (id, kind, caller, idempotency_key, request_digest, request,
                                flow_state, state, recovery_point, user_id, organization_id,
                                remote_id, created_remote, attempts, deadline_at, result,
                                error, created_at, updated_at)
       SELECT {_OP}, 'create_user', 'bench', 'seed-' || n,
              substr(md5('d' || n), 1, 16) || ':' || md5('r' || n) || md5('s' || n),
              jsonb_build_object('role', 'org_user', 'actor', 'bench',
                  'email', 'user' || n || '@bench.example', 'full_name', 'User ' || n,
                  'principal', jsonb_build_object('kind', 'system', 'name', 'bench',
                      'scope', null, 'user_id', null, 'token_id', null),
                  'credential', 'invite', 'permissions', '[]'::jsonb,
                  'claimed_actor', 'bench@platform.test', 'adopt_existing', false,
                  'organization_id', {_ORG_OF_USER}),
              '{{"identity": "created", "credential": "invite"}}'::jsonb,
              'succeeded', 'finished', {_USER}, {_ORG_OF_USER}, {_USER}::text, true, 1,
              {_AT} + interval '1 day',
              jsonb_build_object('operation_id', {_OP}, 'user', {_USER_DOC}),
              'null'::jsonb, {_AT}, {_AT}
       FROM generate_series(1, :n) AS n""",
    """INSERT INTO audit_events (at, actor, action, organization_id, data, by_kind,
                                 claimed_actor)
       SELECT now() - interval '31 days', 'bench', 'organization.created', md5('o' || k)::uuid,
              jsonb_build_object('kind', 'team', 'slug', 'org-' || k, 'max_users', :seats),
              'system', 'bench@platform.test'
       FROM generate_series(1, :orgs) AS k""",
    f"""INSERT INTO audit_events (at, actor, action, subject_user_id, subject_email,
                                  organization_id, operation_id, data, by_kind, claimed_actor)
       SELECT {_AT}, 'bench', a.action, {_USER}, 'user' || n || '@bench.example',
              {_ORG_OF_USER}, {_OP}, a.data, 'system', 'bench@platform.test'
       FROM generate_series(1, :n) AS n,
            (VALUES (1, 'create_user.started', '{{}}'::jsonb),
                    (2, 'user.created', '{{"role": "org_user"}}'::jsonb)) AS a(i, action, data)
       ORDER BY n, a.i""",
    f"""INSERT INTO change_events (seq, position, id, type, occurred_at, subject_type,
                                   subject_id, version, organization_id, organization_ids, data,
                                   changed)
       SELECT k, k, md5('e' || k)::uuid, 'organization.created', now() - interval '31 days',
              'organization', md5('o' || k)::uuid::text, 1, md5('o' || k)::uuid,
              ARRAY[md5('o' || k)::uuid], {_ORG_DOC},
              '{_ORG_CHANGED}'
       FROM generate_series(1, :orgs) AS k""",
    f"""INSERT INTO change_events (seq, position, id, type, occurred_at, subject_type,
                                   subject_id, version, organization_id, user_id,
                                   organization_ids, data, changed, operation_id,
                                   idempotency_key)
       SELECT :orgs + 2 * (n - 1) + e.i, :orgs + 2 * (n - 1) + e.i,
              md5(e.tag || n)::uuid, e.type, {_AT}, e.subject_type,
              CASE e.i WHEN 1 THEN {_USER}::text
                       ELSE {_USER}::text || ':' || {_ORG_OF_USER}::text END,
              1, {_ORG_OF_USER}, {_USER}, ARRAY[{_ORG_OF_USER}],
              CASE e.i WHEN 1 THEN {_USER_DOC} ELSE {_MEMBER_DOC} END,
              CASE e.i WHEN 1 THEN '{_USER_CHANGED}'::text[]
                       ELSE '{{organization_id,permissions,role,user_id}}'::text[] END,
              {_OP}, 'seed-' || n
       FROM generate_series(1, :n) AS n,
            (VALUES (1, 'eu', 'user.created', 'user'),
                    (2, 'em', 'membership.added', 'membership')) AS e(i, tag, type, subject_type)
       ORDER BY n, e.i""",
    # positions given as the assigner would have (seq order), the sequence moved past them
    "SELECT setval(pg_get_serial_sequence('change_events', 'seq'), max(seq)) FROM change_events",
    """INSERT INTO change_feed_head (id, last_position)
       SELECT 1, coalesce(max(position), 0) FROM change_events""",
    """INSERT INTO subject_versions (subject_type, subject_id, version, document)
       SELECT subject_type, subject_id, version, data FROM change_events""",
    f"""INSERT INTO outbox (kind, dedupe_key, recipient, payload, attempts, next_attempt_at,
                            sent_at, created_at)
       SELECT 'invitation', 'invitation:' || {_OP}, 'user' || n || '@bench.example',
              jsonb_build_object('user_id', {_USER}, 'full_name', 'User ' || n,
                                 'valid_hours', 24.0),
              1, {_AT}, {_AT} + interval '2 s', {_AT}
       FROM generate_series(1, :n) AS n""",
    # --open-operations: creates in flight elsewhere (claimed, leased), as under load or after
    # a crash (P4); in organizations the rounds do not use. Only their operations rows.
    """INSERT INTO operations (id, kind, caller, idempotency_key, request_digest, request,
                                state, recovery_point, user_id, organization_id, attempts,
                                lease_until, deadline_at)
       SELECT md5('x' || i)::uuid, 'create_user', 'bench', 'open-' || i, md5('x' || i),
              jsonb_build_object('email', 'open' || i || '@bench.example'), 'open', 'claimed',
              md5('y' || i)::uuid, md5('o' || (i % greatest(:orgs - 20, 1) + 21))::uuid, 1,
              now() + interval '1 hour', now() + interval '1 day'
       FROM generate_series(1, :open) AS i""",
    "ANALYZE",
]


def seed(url: str, users: int, open_operations: int) -> float:
    started = time.perf_counter()
    engine = sync_engine(url)
    orgs = max(1, -(-users // PER_ORG))
    values = {"n": users, "orgs": orgs, "seats": SEATS, "open": open_operations}
    with engine.begin() as conn:
        for statement in SEED:
            conn.execute(text(statement), values)
    engine.dispose()
    return round(time.perf_counter() - started, 1)


def org_id(k: int) -> uuid.UUID:
    import hashlib

    return uuid.UUID(hashlib.md5(f"o{k}".encode()).hexdigest())


async def one_create(accord: Accord, org: uuid.UUID, email: str) -> float:
    request = NewUser(email, "Bench User", org, credential=CredentialMode.INVITE)
    started = time.perf_counter()
    await create_user(accord, request, caller=PLATFORM, idempotency_key=f"bench-{email}")
    return (time.perf_counter() - started) * 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


_BLOCKS = text(
    "SELECT blks_read, blks_hit FROM pg_stat_database WHERE datname = current_database()"
)


async def blocks(accord: Accord) -> tuple[int, int]:
    """Shared-buffer misses and hits of the database so far (as flushed by the backends)."""
    async with accord.db.transaction() as conn:
        await conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        read, hit = (await conn.execute(_BLOCKS)).one()
    return int(read), int(hit)


async def round_of(
    accord: Accord, org: uuid.UUID, tag: str, creates: int, pooled: list[float]
) -> dict[str, float]:
    read_before, hit_before = await blocks(accord)
    took = [await one_create(accord, org, f"{tag}-{i}@new.example") for i in range(creates)]
    pooled += took
    read_after, hit_after = await blocks(accord)
    return {
        "p50_ms": percentile(took, 0.5),
        "p90_ms": percentile(took, 0.9),
        "p99_ms": percentile(took, 0.99),
        "mean_ms": statistics.fmean(took),
        # approximate: a backend flushes its counts at most once a second
        "blocks_read_per_create": (read_after - read_before) / creates,
        "blocks_hit_per_create": (hit_after - hit_before) / creates,
    }


async def database_mb(accord: Accord) -> float:
    async with accord.db.transaction() as conn:
        size = (await conn.execute(text("SELECT pg_database_size(current_database())"))).one()
    return round(size[0] / 2**20, 1)


def medians(rounds: list[dict[str, float]]) -> dict[str, Any]:
    keys = rounds[0].keys()
    out: dict[str, Any] = {k: round(statistics.median(r[k] for r in rounds), 2) for k in keys}
    out["p50_ms_per_round"] = [round(r["p50_ms"], 2) for r in rounds]
    return out


# -- plans ---------------------------------------------------------------------------------

_PARAM = re.compile(r"%\((\w+)\)s")
_LABEL_WORDS = re.compile(r"\s+")


def label(statement: str) -> str:
    """A short name for a statement: its verb and table, and what it is selected by."""
    flat = _LABEL_WORDS.sub(" ", statement).strip()
    if flat.startswith("WITH prev"):
        return "append change event (subject_versions upsert + change_events insert)"
    if flat.startswith("SELECT (SELECT count(*)"):
        return "seat count (memberships + open operations + pending invitations of the org)"
    verb = flat.split(" ")[0]
    # the outer statement's table and condition: those after its last FROM (subqueries first)
    head, _, where = flat.rpartition(" WHERE ") if " WHERE " in flat else (flat, "", "")
    tables = re.findall(r"(?:FROM|INTO|UPDATE) (\w+)", head)
    table = tables[0] if verb != "SELECT" else tables[-1] if tables else "?"
    where = re.sub(r" (FOR|RETURNING) .*$", "", where)
    keys = sorted(set(re.findall(r"\b(\w+)\.(\w+) (?:=|IN)", where)))
    by = ", ".join(f"{t}.{c}" for t, c in keys[:4])
    tail = " ON CONFLICT" if "ON CONFLICT" in flat else ""
    lock = (
        " FOR " + flat.split(" FOR ")[-1]
        if re.search(r" FOR (NO KEY |KEY )?(UPDATE|SHARE)$", flat)
        else ""
    )
    return f"{verb} {table}{' by ' + by if by else ''}{tail}{lock}"


def walk(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += walk(child)
    return nodes


def flags(plan: dict[str, Any], sizes: dict[str, float]) -> list[str]:
    found = []
    for node in walk(plan):
        kind, rel = node["Node Type"], node.get("Relation Name")
        big = rel is not None and sizes.get(rel, 0) > BIG_TABLE
        if kind == "Seq Scan" and big:
            found.append(f"Seq Scan on {rel} ({sizes[rel]:.0f} rows)")
        index = node.get("Index Name")
        scans = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")
        whole = kind in scans and "Index Cond" not in node
        if whole and sizes.get(index, 0) > BIG_TABLE:  # a partial index may hold few rows
            found.append(f"{kind} of all of {index} ({sizes[index]:.0f} entries)")
        if kind in ("Sort", "Hash", "Aggregate", "HashAggregate"):
            fed = sum(child.get("Plan Rows", 0) for child in node.get("Plans", []))
            if fed > BIG_TABLE:
                found.append(f"{kind} over {fed} rows")
    return found


def summary(plan: dict[str, Any], sizes: dict[str, float]) -> dict[str, Any]:
    nodes = []
    for node in walk(plan):
        name = node["Node Type"]
        if node.get("Relation Name"):
            name += f" {node['Relation Name']}"
        if node.get("Index Name"):
            name += f" ({node['Index Name']})"
        nodes.append(name)
    return {"nodes": nodes, "flags": flags(plan, sizes), "cost": plan.get("Total Cost")}


def explain_all(url: str, captured: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    results = []
    with psycopg.connect(conninfo) as conn:
        sizes = {
            name: float(rows)
            for name, rows in conn.execute(
                "SELECT relname, reltuples FROM pg_class WHERE relkind IN ('r', 'i')"
            )
        }
        for i, (statement, parameters) in enumerate(captured):
            params = parameters[0] if isinstance(parameters, list) else parameters
            entry: dict[str, Any] = {"label": label(statement)}
            for kind, plan in (
                ("custom", custom_plan(conn, statement, params)),
                ("generic", generic_plan(conn, statement, params, i)),
            ):
                entry[kind] = plan if "error" in plan else summary(plan, sizes)
            custom, generic = entry["custom"], entry["generic"]
            # plan_cache_mode auto keeps planning custom plans while the generic one costs more
            entry["generic_may_be_used"] = "cost" in generic and generic["cost"] <= 1.1 * (
                custom.get("cost") or 0
            )
            entry["index_lookup"] = (
                "error" not in custom
                and not custom["flags"]
                and not (entry["generic_may_be_used"] and generic["flags"])
            )
            results.append(entry)
    return results


def custom_plan(conn: psycopg.Connection[Any], statement: str, params: Any) -> dict[str, Any]:
    try:
        with conn.transaction(force_rollback=True):
            row = conn.execute("EXPLAIN (FORMAT JSON) " + statement, params).fetchone()
        assert row is not None
        return dict(row[0][0]["Plan"])
    except psycopg.Error as failed:
        return {"error": str(failed).splitlines()[0]}


def generic_plan(
    conn: psycopg.Connection[Any], statement: str, params: Any, i: int
) -> dict[str, Any]:
    """The plan PostgreSQL would cache for the prepared statement, parameters unknown."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    numbered = _PARAM.sub(number, statement)
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            conn.execute(f"PREPARE p2_{i} AS {numbered}")
            values = [params[name] for name in names]
            args = psycopg.ClientCursor(conn).mogrify(", ".join(["%s"] * len(values)), values)
            sql = f"EXPLAIN (FORMAT JSON) EXECUTE p2_{i}" + (f"({args})" if values else "")
            row = conn.execute(sql).fetchone()
        conn.execute(f"DEALLOCATE p2_{i}")
        assert row is not None
        return dict(row[0][0]["Plan"])
    except psycopg.Error as failed:
        return {"error": str(failed).splitlines()[0]}


async def plans(accord: Accord, url: str, org: uuid.UUID) -> list[dict[str, Any]]:
    with captured_statements() as captured:
        await one_create(accord, org, "explained@new.example")
    return await asyncio.to_thread(explain_all, url, captured)


async def measure(urls: dict[str, str], args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    accords = {
        size: build(Settings(database_url=url, data_dir=data_dir, secret_key=new_key_text()))
        for size, url in urls.items()
    }
    try:
        for size, accord in accords.items():  # warm up: pool, prepared statements, caches
            for i in range(20):
                await one_create(accord, org_id(1), f"warm-{size}-{i}@new.example")
        rounds: dict[str, list[dict[str, float]]] = {size: [] for size in accords}
        pooled: dict[str, list[float]] = {size: [] for size in accords}
        for r in range(args.rounds):
            for size, accord in accords.items():
                tag = f"r{r}-{size}"
                org = org_id(r % 9 + 2)  # the small database has 10 organizations
                took = await round_of(accord, org, tag, args.creates, pooled[size])
                rounds[size].append(took)
        explained = await plans(accords["large"], urls["large"], org_id(1))
        sizes = [await database_mb(accords[size]) for size in ("small", "large")]
        async with accords["large"].db.transaction() as conn:
            buffers = (await conn.execute(text("SHOW shared_buffers"))).scalar_one()
    finally:
        for accord in accords.values():
            await accord.aclose()
    small, large = medians(rounds["small"]), medians(rounds["large"])
    small["database_mb"], large["database_mb"] = sizes
    for stats, size in ((small, "small"), (large, "large")):
        stats["pooled_p50_ms"] = round(percentile(pooled[size], 0.5), 2)
        stats["pooled_p99_ms"] = round(percentile(pooled[size], 0.99), 2)
    ratio = round(large["p50_ms"] / small["p50_ms"], 3)
    return {
        "small": small,
        "large": large,
        "shared_buffers": buffers,
        "p50_ratio": ratio,
        "pooled_p50_ratio": round(large["pooled_p50_ms"] / small["pooled_p50_ms"], 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
        "all_index_lookups": all(p["index_lookup"] for p in explained),
        "plans": explained,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 users, 4 rounds of 25")
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--creates", type=int, default=100, help="per round")
    parser.add_argument("--rounds", type=int, default=9, help="per database")
    parser.add_argument(
        "--open-operations", type=int, default=0, help="open creates seeded in other orgs"
    )
    parser.add_argument("--database-url", default=os.environ.get("ACCORD_TEST_SERVER", SERVER))
    args = parser.parse_args()
    if args.quick:
        args.users, args.creates, args.rounds = 100_000, 25, 4
    load_before = [round(x, 2) for x in os.getloadavg()]
    made: list[str] = []
    try:
        urls, seeded = {}, {}
        for size, users in (("small", args.small), ("large", args.users)):
            name, urls[size] = fresh_database(args.database_url)
            made.append(name)
            seeded[size] = seed(urls[size], users, args.open_operations)
        with tempfile.TemporaryDirectory() as data_dir:
            result = asyncio.run(measure(urls, args, Path(data_dir)))
    finally:
        for name in made:
            drop_database(args.database_url, name)
    report = {
        "users": {"small": args.small, "large": args.users},
        "open_operations": args.open_operations,
        "creates_per_round": args.creates,
        "rounds": args.rounds,
        "idp": "local",
        "seed_seconds": seeded,
        **result,
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
