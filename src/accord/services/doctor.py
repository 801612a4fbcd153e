"""doctor: is this accord installation healthy? In seconds, whatever its size.

Configuration, the database and its migrations, the IdP's credentials and reachability, then a
drift summary from a bounded sample: the newest rows checked against the IdP by ``get``, the
first IdP users of the listing checked against the database, and the stuck operations. The
sample is a smoke test, not a proof: ``accord reconcile`` is the full check.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from accord.adapters.db import drift as drift_sql
from accord.adapters.db import migrate
from accord.adapters.db.database import Database
from accord.adapters.db.engine import async_engine, redact
from accord.domain import errors
from accord.domain.drift import email_key
from accord.domain.ports import IdentityProvider

if TYPE_CHECKING:
    from accord.config import Settings

STUCK_GRACE_SECONDS = 300.0


@dataclass
class Diagnosis:
    """The checks, each passed or failed with a sentence, and the drift seen in the sample."""

    checks: list[dict[str, Any]] = field(default_factory=list)
    drift_sample: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append({"name": name, "ok": ok, "detail": detail})
        return ok

    @property
    def healthy(self) -> bool:
        drift = sum(
            v for k, v in self.drift_sample.items() if isinstance(v, int) and k != "sampled"
        )
        return all(c["ok"] for c in self.checks) and not drift

    def as_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "checks": self.checks, "drift_sample": self.drift_sample}


async def diagnose(settings: Settings, *, sample: int = 200, seconds: float = 10.0) -> Diagnosis:
    """Run every check; a failed one stops the checks that depend on it."""
    from accord import bootstrap  # imported here: bootstrap imports the services

    report = Diagnosis()
    report.check("configuration", True, f"identity provider {settings.idp!r}")
    try:
        url = await asyncio.to_thread(bootstrap.resolve_database_url, settings)
    except Exception as exc:  # the embedded server failed to start, or similar
        report.check("database", False, f"cannot start or find the database: {exc}")
        return report
    db = Database(async_engine(url, pool_size=2))
    try:
        if await _database(db, url, report):
            idp = await _identity_provider(settings, db, report, seconds)
            if idp is not None:
                try:
                    await _sample(db, idp, report, sample, seconds)
                finally:
                    await idp.aclose()
    finally:
        await db.dispose()
    return report


async def _database(db: Database, url: str, report: Diagnosis) -> bool:
    try:
        async with db.transaction() as conn:
            await conn.execute(text("SELECT 1"))
    except errors.AccordError as exc:
        return report.check("database", False, f"{redact(url)} does not answer: {exc.message}")
    report.check("database", True, f"{redact(url)} answers")
    current = await asyncio.to_thread(migrate.current_revision, url)
    head = migrate.head_revision()
    if current != head:
        detail = f"at revision {current}, this accord needs {head}: run `accord db upgrade`"
        return report.check("migrations", False, detail)
    return report.check("migrations", True, f"at revision {head} (current)")


async def _identity_provider(
    settings: Settings, db: Database, report: Diagnosis, seconds: float
) -> IdentityProvider | None:
    from accord import bootstrap

    try:
        idp = bootstrap.build_idp(settings, db)
    except errors.AccordError as exc:
        report.check("identity provider", False, exc.message)
        return None
    try:
        async with asyncio.timeout(seconds):
            await idp.check()
    except (errors.AccordError, TimeoutError) as exc:
        await idp.aclose()
        message = getattr(exc, "message", f"no answer within {seconds:g} s")
        report.check("identity provider", False, f"{idp.name}: {message}")
        return None
    report.check("identity provider", True, f"{idp.name}: reachable, credentials accepted")
    return idp


async def _sample(
    db: Database, idp: IdentityProvider, report: Diagnosis, sample: int, seconds: float
) -> None:
    found: dict[str, Any] = {"sampled": 0}
    try:
        async with asyncio.timeout(seconds):
            await _sample_rows(db, idp, sample, found)
            await _sample_idp_users(db, idp, sample, found)
            async with db.transaction() as conn:
                query = text(drift_sql.COUNT_STUCK)
                stuck = await conn.execute(query, {"grace": STUCK_GRACE_SECONDS})
                found["stuck_operations"] = stuck.scalar_one()
    except TimeoutError:
        found["cut_short"] = f"the sample took more than {seconds:g} s"
    except errors.AccordError as exc:
        found["cut_short"] = exc.message
    report.drift_sample = found


async def _sample_rows(db: Database, idp: IdentityProvider, limit: int, found: dict) -> None:
    async with db.transaction() as conn:
        query = text(drift_sql.SAMPLE_ROWS)
        rows = (await conn.execute(query, {"provider": idp.name, "limit": limit})).all()
    gate = asyncio.Semaphore(8)

    async def judge(row: Any) -> str | None:
        if row.busy:
            return None
        if row.remote_id is None:
            return "rows_never_finished" if row.status == "provisioning" else "rows_without_link"
        async with gate:
            try:
                remote = await idp.get(row.remote_id)
            except errors.RemoteNotFound:
                return "orphan_rows"
        return None if email_key(remote.email) == row.email else "email_mismatches"

    for verdict in await asyncio.gather(*(judge(r) for r in rows)):
        if verdict:
            found[verdict] = found.get(verdict, 0) + 1
    found["sampled"] += len(rows)


async def _sample_idp_users(db: Database, idp: IdentityProvider, limit: int, found: dict) -> None:
    listed = []
    users = idp.iter_users(page_size=min(limit, 500))
    try:
        async for user in users:
            listed.append(user)
            if len(listed) >= limit:
                break
    finally:
        close = getattr(users, "aclose", None)  # a generator: end its listing (and HTTP stream)
        if close is not None:
            await close()
    params = {
        "provider": idp.name,
        "remote_ids": [u.remote_id for u in listed],
        "emails": [email_key(u.email) for u in listed],
    }
    async with db.transaction() as conn:
        unlinked = (await conn.execute(text(drift_sql.UNLINKED_OF), params)).all()
    found["unlinked_matches"] = sum(1 for u in unlinked if u.has_row)
    found["orphan_idp_users"] = sum(1 for u in unlinked if not u.has_row)
    found["sampled"] += len(listed)
