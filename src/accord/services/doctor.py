"""doctor: is this accord installation healthy? In seconds, whatever its size.

Configuration, the database and its migrations, the IdP's credentials and reachability, then a
drift summary from a bounded sample: the newest rows checked against the IdP by ``get``, the
first IdP users of the listing checked against the database, and the stuck operations. The
sample is a smoke test, not a proof: ``accord reconcile`` is the full check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from accord.domain import errors
from accord.domain.drift import email_key
from accord.domain.ports import IdentityProvider
from accord.domain.store import Store

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


@dataclass
class Installation:
    """What the doctor examines, as ``accord.bootstrap.diagnose`` found it."""

    store: Store
    where: str  # the database, for people (its URL without the password)
    schema: Callable[[], Awaitable[tuple[str | None, str | None]]]  # (current, needed) revisions
    identity_provider: Callable[[], IdentityProvider]  # builds it; may raise AccordError
    # The mail transport's probe: a sentence naming it, or an AccordError (None: not checked).
    mail: Callable[[], Awaitable[str]] | None = None


async def examine(
    install: Installation, report: Diagnosis, *, sample: int = 200, seconds: float = 10.0
) -> Diagnosis:
    """Run every check; a failed one stops the checks that depend on it."""
    if await _database(install, report):
        await _mail(install, report, seconds)
        idp = await _identity_provider(install, report, seconds)
        if idp is not None:
            try:
                await _sample(install.store, idp, report, sample, seconds)
            finally:
                await idp.aclose()
    return report


async def _database(install: Installation, report: Diagnosis) -> bool:
    try:
        async with install.store.transaction() as tx:
            await tx.ping()
    except errors.AccordError as exc:
        return report.check("database", False, f"{install.where} does not answer: {exc.message}")
    report.check("database", True, f"{install.where} answers")
    current, head = await install.schema()
    if current != head:
        detail = f"at revision {current}, this accord needs {head}: run `accord db upgrade`"
        return report.check("migrations", False, detail)
    return report.check("migrations", True, f"at revision {head} (current)")


async def _mail(install: Installation, report: Diagnosis, seconds: float) -> None:
    """Which transport mail takes, and whether it answers (SMTP: a connection; the mailbox:
    its table)."""
    if install.mail is None:
        return
    try:
        async with asyncio.timeout(seconds):
            detail = await install.mail()
    except (errors.AccordError, TimeoutError) as exc:
        report.check("mail", False, getattr(exc, "message", f"no answer within {seconds:g} s"))
        return
    report.check("mail", True, detail)


async def _identity_provider(
    install: Installation, report: Diagnosis, seconds: float
) -> IdentityProvider | None:
    try:
        idp = install.identity_provider()
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
    store: Store, idp: IdentityProvider, report: Diagnosis, sample: int, seconds: float
) -> None:
    found: dict[str, Any] = {"sampled": 0}
    try:
        async with asyncio.timeout(seconds):
            await _sample_rows(store, idp, sample, found)
            await _sample_idp_users(store, idp, sample, found)
            async with store.transaction() as tx:
                found["stuck_operations"] = await tx.drift.count_stuck(STUCK_GRACE_SECONDS)
    except TimeoutError:
        found["cut_short"] = f"the sample took more than {seconds:g} s"
    except errors.AccordError as exc:  # refused, not slow: reconcile would fail the same way
        found["cut_short"] = exc.message
        report.check("drift sample", False, f"{idp.name}: {exc.message}")
    report.drift_sample = found


async def _sample_rows(
    store: Store, idp: IdentityProvider, limit: int, found: dict[str, Any]
) -> None:
    async with store.transaction() as tx:
        rows = await tx.drift.sample_rows(idp.name, limit)
    gate = asyncio.Semaphore(8)

    async def judge(row: Any) -> str | None:
        if row["busy"]:
            return None
        if row["remote_id"] is None:
            never = row["status"] == "provisioning"
            return "rows_never_finished" if never else "rows_without_link"
        async with gate:
            try:
                remote = await idp.get(row["remote_id"])
            except errors.RemoteNotFound:
                return "orphan_rows"
        return None if email_key(remote.email) == row["email"] else "email_mismatches"

    for verdict in await asyncio.gather(*(judge(r) for r in rows)):
        if verdict:
            found[verdict] = found.get(verdict, 0) + 1
    found["sampled"] += len(rows)


async def _sample_idp_users(
    store: Store, idp: IdentityProvider, limit: int, found: dict[str, Any]
) -> None:
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
    async with store.transaction() as tx:
        unlinked = await tx.drift.unlinked_of(
            idp.name, [u.remote_id for u in listed], [email_key(u.email) for u in listed]
        )
    found["unlinked_matches"] = sum(1 for u in unlinked if u["has_row"])
    found["orphan_idp_users"] = sum(1 for u in unlinked if not u["has_row"])
    found["sampled"] += len(listed)
