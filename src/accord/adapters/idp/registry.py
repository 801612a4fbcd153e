"""Which IdentityProvider ``settings.idp`` names, built with its settings."""

from __future__ import annotations

from accord.adapters.db.database import Database
from accord.config import Settings
from accord.domain.ports import IdentityProvider


def build(settings: Settings, db: Database) -> IdentityProvider:
    """Build the configured provider; vendor modules are imported only when chosen."""
    if settings.idp == "local":
        from accord.adapters.idp.local import LocalProvider

        return LocalProvider(db)
    if settings.idp == "auth0":
        from accord.adapters.idp.auth0 import Auth0Provider

        return Auth0Provider.from_settings(settings.auth0)
    if settings.idp == "supabase":
        from accord.adapters.idp.supabase import SupabaseProvider

        return SupabaseProvider.from_settings(settings.supabase)
    from accord.adapters.idp.keycloak import KeycloakProvider

    return KeycloakProvider.from_settings(settings.keycloak)
