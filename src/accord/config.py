"""Configuration: one typed object, read from ``ACCORD_*`` environment variables when built.

Nothing reads the environment at import time: ``Settings()`` is built once, by the entrypoint,
and passed down. Nested sections use ``__``: ``ACCORD_AUTH0__CLIENT_ID``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

IdpName = Literal["local", "auth0", "supabase", "keycloak"]


class Auth0Settings(BaseModel):
    domain: str | None = None
    base_url: str | None = Field(None, description="Overrides https://DOMAIN, e.g. an emulator.")
    client_id: str | None = None
    client_secret: SecretStr | None = None
    connection: str = "Username-Password-Authentication"
    timeout_seconds: float = 10.0


class SupabaseSettings(BaseModel):
    url: str | None = None
    service_role_key: SecretStr | None = None
    timeout_seconds: float = 10.0


class KeycloakSettings(BaseModel):
    server_url: str | None = None
    realm: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    timeout_seconds: float = 10.0


class SmtpSettings(BaseModel):
    host: str = "localhost"
    port: int = 25
    username: str | None = None
    password: SecretStr | None = None
    use_tls: bool = False
    start_tls: bool = False
    sender: str = "accord <no-reply@localhost>"
    timeout_seconds: float = 10.0


class RegistrationSettings(BaseModel):
    verify_email: bool = Field(
        True,
        description="Public registration proves the e-mail: the account exists once the mailed "
        "link is used (false: at once, as an operator's `accord register --verified`).",
    )
    link_ttl_hours: float = Field(24.0, gt=0, description="How long a verification link works.")


class Settings(BaseSettings):
    """Everything accord can be told. See the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="ACCORD_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    database_url: SecretStr | None = Field(
        None, description="PostgreSQL URL; without it accord runs an embedded server."
    )
    database_pool_size: int = Field(
        10, ge=1, description="Connections per process (as many again may overflow briefly)."
    )
    data_dir: Path = Field(
        default_factory=lambda: platformdirs.user_data_path("accord"),
        description="Where the embedded database and generated keys live.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Seals secrets held by open operations; generated in data_dir if unset.",
    )
    idp: IdpName = "local"
    public_url: str = Field(
        "http://localhost:8000", description="Base URL of accord's pages, used in mailed links."
    )
    operation_lease_seconds: float = 60.0
    operation_deadline_seconds: float = 24 * 3600.0
    invite_ttl_hours: float = 24.0
    temp_password_ttl_hours: float = 72.0
    operation_max_attempts: int = Field(
        25, description="Attempts before an operation is compensated and failed."
    )
    idempotency_ttl_hours: float = Field(
        24.0, description="How long a finished operation's Idempotency-Key replays its answer."
    )
    worker_poll_seconds: float = 1.0
    serve_worker: bool = Field(
        True, description="Whether `accord serve` runs a worker in each of its processes."
    )
    crash_at: str | None = Field(
        None, description="Testing only: SIGKILL the process at this named point."
    )
    auth0: Auth0Settings = Auth0Settings()
    supabase: SupabaseSettings = SupabaseSettings()
    keycloak: KeycloakSettings = KeycloakSettings()
    smtp: SmtpSettings = SmtpSettings()
    registration: RegistrationSettings = RegistrationSettings()
