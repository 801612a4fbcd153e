"""``accord emulate VENDOR``: serve a vendor's admin API emulator with fault injection."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console

from accord.emulators.faults import FaultConfig


class Vendor(StrEnum):
    AUTH0 = "auth0"
    SUPABASE = "supabase"
    KEYCLOAK = "keycloak"


err = Console(stderr=True, soft_wrap=True, highlight=False)


def build_app(vendor: Vendor, faults: FaultConfig, credentials: dict[str, str | None]) -> Any:
    """The emulator app for ``vendor``; unset credentials take the emulator's defaults."""
    given = {k: v for k, v in credentials.items() if v is not None}
    if vendor == Vendor.AUTH0:
        from accord.emulators import auth0

        keys = {"client_id", "client_secret"}
        return auth0.create_app(faults=faults, **{k: v for k, v in given.items() if k in keys})
    if vendor == Vendor.SUPABASE:
        from accord.emulators import supabase

        keys = {"service_role_key"}
        return supabase.create_app(faults=faults, **{k: v for k, v in given.items() if k in keys})
    from accord.emulators import keycloak

    keys = {"client_id", "client_secret", "realm"}
    return keycloak.create_app(faults=faults, **{k: v for k, v in given.items() if k in keys})


def settings_hint(vendor: Vendor, base_url: str, credentials: dict[str, str | None]) -> list[str]:
    """The ACCORD_* variables that point accord at this emulator."""
    if vendor == Vendor.AUTH0:
        from accord.emulators import auth0

        return [
            "ACCORD_IDP=auth0",
            f"ACCORD_AUTH0__BASE_URL={base_url}",
            f"ACCORD_AUTH0__DOMAIN={base_url.split('://', 1)[1]}",
            f"ACCORD_AUTH0__CLIENT_ID={credentials['client_id'] or auth0.DEFAULT_CLIENT_ID}",
            "ACCORD_AUTH0__CLIENT_SECRET="
            + (credentials["client_secret"] or auth0.DEFAULT_CLIENT_SECRET),
        ]
    if vendor == Vendor.SUPABASE:
        from accord.emulators import supabase

        key = credentials["service_role_key"] or supabase.DEFAULT_SERVICE_ROLE_KEY
        return [
            "ACCORD_IDP=supabase",
            f"ACCORD_SUPABASE__URL={base_url}",
            f"ACCORD_SUPABASE__SERVICE_ROLE_KEY={key}",
        ]
    from accord.emulators import keycloak

    return [
        "ACCORD_IDP=keycloak",
        f"ACCORD_KEYCLOAK__SERVER_URL={base_url}",
        f"ACCORD_KEYCLOAK__REALM={credentials['realm'] or keycloak.DEFAULT_REALM}",
        f"ACCORD_KEYCLOAK__CLIENT_ID={credentials['client_id'] or keycloak.DEFAULT_CLIENT_ID}",
        "ACCORD_KEYCLOAK__CLIENT_SECRET="
        + (credentials["client_secret"] or keycloak.DEFAULT_CLIENT_SECRET),
    ]


def emulate(
    vendor: Annotated[Vendor, typer.Argument(help="Which vendor's admin API to serve.")],
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8081,
    host: Annotated[
        str, typer.Option("--host", help="Address (loopback by default).")
    ] = "127.0.0.1",
    client_id: Annotated[str | None, typer.Option("--client-id", help="Auth0/Keycloak.")] = None,
    client_secret: Annotated[
        str | None, typer.Option("--client-secret", help="Auth0/Keycloak.")
    ] = None,
    realm: Annotated[str | None, typer.Option("--realm", help="Keycloak realm.")] = None,
    service_role_key: Annotated[
        str | None, typer.Option("--service-role-key", help="Supabase service-role key.")
    ] = None,
    latency_ms: Annotated[float, typer.Option("--latency-ms", min=0)] = 0.0,
    latency_jitter_ms: Annotated[float, typer.Option("--latency-jitter-ms", min=0)] = 0.0,
    error_rate: Annotated[float, typer.Option("--error-rate", min=0, max=1)] = 0.0,
    ghost_rate: Annotated[float, typer.Option("--ghost-rate", min=0, max=1)] = 0.0,
    timeout_rate: Annotated[float, typer.Option("--timeout-rate", min=0, max=1)] = 0.0,
    rate_limit: Annotated[
        int | None, typer.Option("--rate-limit", min=1, help="Requests per second before 429.")
    ] = None,
    search_lag_ms: Annotated[float, typer.Option("--search-lag-ms", min=0)] = 0.0,
    seed: Annotated[int | None, typer.Option("--seed", help="Replay a run's faults.")] = None,
) -> None:
    """Serve an emulator of a vendor's admin API, with injectable faults (see /__faults)."""
    import uvicorn

    faults = FaultConfig(
        latency_ms=latency_ms,
        latency_jitter_ms=latency_jitter_ms,
        error_rate=error_rate,
        ghost_rate=ghost_rate,
        timeout_rate=timeout_rate,
        rate_limit=rate_limit,
        search_lag_ms=search_lag_ms,
        seed=seed,
    )
    credentials = {
        "client_id": client_id,
        "client_secret": client_secret,
        "realm": realm,
        "service_role_key": service_role_key,
    }
    app = build_app(vendor, faults, credentials)
    base_url = f"http://{host}:{port}"
    err.print(f"{vendor} emulator on {base_url} (faults: GET/PUT {base_url}/__faults)")
    err.print(
        "point accord at it with:\n  " + "\n  ".join(settings_hint(vendor, base_url, credentials))
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
