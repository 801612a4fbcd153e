"""Configuration: one typed object, read from ``ACCORD_*`` environment variables when built.

Nothing reads the environment at import time: ``Settings()`` is built once, by the entrypoint,
and passed down. Nested sections use ``__``: ``ACCORD_AUTH0__CLIENT_ID``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import limits
import platformdirs
from pydantic import BaseModel, Field, SecretStr, field_validator
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
    host: str | None = Field(
        None,
        description="The SMTP server; unset, mail goes to the embedded mailbox "
        "(`accord mail list`).",
    )
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


class ThrottleSettings(BaseModel):
    """Attempt limits, in the ``limits`` library's notation (``"5/minute;20/hour"``: each limit
    is a moving window; several are separated by ``;``). Counters live in PostgreSQL, so every
    process of one installation shares them."""

    enabled: bool = True
    login_failures_per_account_and_address: str = Field(
        "5/minute;20/hour",
        description="Failed sign-ins for one account from one client address; then 429 "
        "`too_many_attempts` until the oldest failure leaves its window (a success clears it).",
    )
    login_failures_per_account: str = Field(
        "100/hour",
        description="Failed sign-ins for one account from all addresses together (a guesser "
        "with many addresses); it expires an hour after the failures stop.",
    )
    login_failures_per_address: str = Field(
        "50/hour", description="Failed sign-ins from one client address, for any accounts."
    )
    public_requests_per_address: str = Field(
        "60/minute",
        description="Requests to the public endpoints (registration, verification, sign-in, "
        "password setup and replacement) from one client address; then 429 `too_many_requests`.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses (or networks) of reverse proxies whose X-Forwarded-For is "
        "believed; by default none, and the client address is the connection's peer.",
    )

    @field_validator(
        "login_failures_per_account_and_address",
        "login_failures_per_account",
        "login_failures_per_address",
        "public_requests_per_address",
    )
    @classmethod
    def _a_rule(cls, value: str) -> str:
        try:
            limits.parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit such as '5/minute;20/hour': {exc}") from None
        return value


class PasswordSettings(BaseModel):
    min_score: int = Field(
        3,
        ge=0,
        le=4,
        description="The least zxcvbn score (0-4) of a password a person chooses; below it, "
        "400 `password_too_weak` with zxcvbn's advice.",
    )


class WebhookSettings(BaseModel):
    allow_private_targets: bool = Field(
        False,
        description="Allow webhook URLs that resolve to loopback, private or link-local "
        "addresses (tests, a receiver on the same network); refused by default (SSRF).",
    )
    lease_seconds: float = Field(
        60.0, gt=15, description="How long a worker holds a delivery before another retries it."
    )


class ServeSettings(BaseModel):
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A client that has not sent a whole request head by then is dropped.",
    )
    limit_concurrency: int = Field(
        1000, ge=1, description="Connections (and tasks) at once per process; then 503."
    )
    timeout_keep_alive_seconds: int = Field(
        5, ge=1, description="An idle keep-alive connection is closed after this."
    )
    # uvicorn's own default (5 s) restarts a worker process that is still importing on a busy
    # machine, and the restarted one is killed the same way: ``--workers N`` never comes up.
    worker_healthcheck_seconds: int = Field(
        60,
        ge=1,
        description="With --workers N, a worker process silent this long is restarted.",
    )


class Settings(BaseSettings):
    """Everything accord can be told. See the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="ACCORD_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    database_url: SecretStr | None = Field(
        None, description="PostgreSQL URL; without it accord runs an embedded server."
    )
    database_pool_size: int = Field(
        10,
        ge=1,
        description="Connections per process for transactions (as many again may overflow "
        "briefly); statements alone take up to 4 more, a pool of their own.",
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
    worker_poll_seconds: float = Field(
        1.0,
        gt=0,
        description="The longest an idle worker sleeps: it wakes sooner on a work notice "
        "(PostgreSQL LISTEN/NOTIFY) and when a retry or a lease falls due.",
    )
    worker_concurrency: int = Field(
        10,
        ge=1,
        description="Operations one worker process runs at once (their IdP calls overlap); "
        "each holds a pooled connection while in a transaction: keep it near "
        "database_pool_size.",
    )
    worker_pass_operations: int = Field(
        1000,
        ge=1,
        description="Operations one pass of the worker takes at most (leased in batches as "
        "places free up); mail and the change feed get their turn between passes.",
    )
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
    throttle: ThrottleSettings = ThrottleSettings()
    password: PasswordSettings = PasswordSettings()
    serve: ServeSettings = ServeSettings()
    webhooks: WebhookSettings = WebhookSettings()
    audit_retention_days: float = Field(
        365.0, ge=0, description="Audit events older than this are deleted; 0 keeps them for ever."
    )
    events_retention_days: float = Field(
        30.0,
        gt=0,
        description="Change feed events older than this are deleted; a cursor from before "
        "the oldest kept event answers 410 cursor_expired.",
    )
    mailbox_retention_days: float = Field(
        7.0,
        gt=0,
        description="Messages of the embedded mailbox (no SMTP server) older than this are "
        "deleted: their links are secrets in transit.",
    )
    last_membership_removed: Literal["keep", "deprovision"] = Field(
        "keep",
        description="What becomes of a user whose last membership is removed: `keep` the "
        "account, or `deprovision` it (the deprovision operation starts after the removal).",
    )
