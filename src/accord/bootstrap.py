"""Builds accord once: settings → database, identity provider, sealer, hooks.

The only place that picks implementations. Entrypoints call ``build``; tests call it with
their own database URL and, where they need one, a fake identity provider.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from accord.adapters.db.database import Database
from accord.adapters.db.embedded import start_embedded
from accord.adapters.db.engine import async_engine
from accord.adapters.sealing import Sealer, decode_key, load_or_create_key
from accord.config import Settings
from accord.domain.ports import IdentityProvider
from accord.services import deprovisioning, provisioning, registration  # noqa: F401 (flows)
from accord.services.hooks import Hooks


@dataclass
class Accord:
    """Everything a use case needs, built once and passed down."""

    settings: Settings
    database_url: str
    db: Database
    idp: IdentityProvider
    sealer: Sealer
    hooks: Hooks = field(default_factory=Hooks)

    async def aclose(self) -> None:
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
    db = Database(async_engine(url, pool_size=settings.database_pool_size))
    return Accord(
        settings=settings,
        database_url=url,
        db=db,
        idp=idp or build_idp(settings, db),
        sealer=build_sealer(settings),
        hooks=hooks or Hooks(),
    )
