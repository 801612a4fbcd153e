"""Builds accord once: settings → database, store, identity provider, sealer, flows, hooks.

The only place that picks implementations. Entrypoints call ``build``; tests call it with
their own database URL and, where they need one, a fake identity provider (or build a
``Context`` of fakes with ``accord.testing.fake_context``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from accord.adapters.db.database import Database
from accord.adapters.db.embedded import start_embedded
from accord.adapters.db.engine import async_engine, redact
from accord.adapters.db.rate_limits import pg_throttle
from accord.adapters.db.store import PgStore
from accord.adapters.db.work_signal import PgWorkSignal
from accord.adapters.sealing import Sealer, decode_key, load_or_create_key
from accord.adapters.webhooks.http import HttpWebhookTargets
from accord.config import Settings
from accord.domain.ports import IdentityProvider, Mailer
from accord.domain.store import Store
from accord.services.context import Context
from accord.services.doctor import Diagnosis, Installation, examine
from accord.services.flows import flow_table
from accord.services.hooks import Hooks


@dataclass
class Accord(Context):
    """The services' context on PostgreSQL, with what only the entrypoints and tests need:
    the database itself (raw SQL for tests, the local IdP's tables) and its URL."""

    database_url: str = field(kw_only=True)
    db: Database = field(kw_only=True)

    async def aclose(self) -> None:
        if self.work_signal is not None:
            await self.work_signal.aclose()
        if isinstance(self.store, PgStore):
            await self.store.aclose()
        await self.idp.aclose()
        await self.db.dispose()


def resolve_database_url(settings: Settings) -> str:
    """The configured URL, or the URL of the embedded server (started if needed)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return start_embedded(settings.data_dir)


def build_sealer(settings: Settings) -> Sealer:
    if settings.secret_key is not None:
        return Sealer(decode_key(settings.secret_key.get_secret_value()))
    return Sealer(load_or_create_key(settings.data_dir / "secret.key"))


def build_idp(settings: Settings, db: Database) -> IdentityProvider:
    """The identity provider that ``settings.idp`` names."""
    from accord.adapters.idp import registry  # vendor modules load only when chosen

    return registry.build(settings, db)


def build_mailer(settings: Settings, store: Store) -> Mailer:
    """The one choice of mail transport: SMTP when ``ACCORD_SMTP__HOST`` is set, else the
    embedded mailbox (mail works out of the box; ``accord mail list`` reads it)."""
    if settings.smtp.host:
        from accord.adapters.mail.smtp import SmtpMailer

        return SmtpMailer(settings.smtp)
    from accord.adapters.mail.mailbox import MailboxMailer

    return MailboxMailer(store)


def build(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    idp: IdentityProvider | None = None,
    hooks: Hooks | None = None,
) -> Accord:
    """An Accord from ``settings`` (read from the environment when omitted)."""
    settings = settings or Settings()
    url = database_url or resolve_database_url(settings)
    engine = async_engine(url, pool_size=settings.database_pool_size)
    db = Database(engine)
    return Accord(
        settings=settings,
        store=PgStore(db),
        idp=idp or build_idp(settings, db),
        sealer=build_sealer(settings),
        flows=flow_table(),
        hooks=hooks or Hooks(),
        throttle=pg_throttle(db),
        webhooks=HttpWebhookTargets(allow_private=settings.webhooks.allow_private_targets),
        work_signal=PgWorkSignal(url),  # listens only once a worker waits on it
        database_url=url,
        db=db,
    )


async def diagnose(settings: Settings, *, sample: int = 200, seconds: float = 10.0) -> Diagnosis:
    """``accord doctor``: the installation that ``settings`` describe, checked."""
    from accord.adapters.db import migrate

    report = Diagnosis()
    report.check("configuration", True, f"identity provider {settings.idp!r}")
    try:
        url = await asyncio.to_thread(resolve_database_url, settings)
    except Exception as exc:  # the embedded server failed to start, or similar
        report.check("database", False, f"cannot start or find the database: {exc}")
        return report

    async def schema() -> tuple[str | None, str | None]:
        return await asyncio.to_thread(migrate.current_revision, url), migrate.head_revision()

    engine = async_engine(url, pool_size=2)
    db = Database(engine)
    store = PgStore(db)
    mailer = build_mailer(settings, store)
    install = Installation(
        store=store,
        where=redact(url),
        schema=schema,
        identity_provider=lambda: build_idp(settings, db),
        mail=getattr(mailer, "check", None),
    )
    try:
        return await examine(install, report, sample=sample, seconds=seconds)
    finally:
        await db.dispose()
