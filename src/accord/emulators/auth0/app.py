"""The emulated tenant's HTTP side: routes, request bodies, the bearer check on every admin call,
and the ``x-ratelimit-*`` headers on every response."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accord.emulators.auth0 import export, query
from accord.emulators.auth0.tenant import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_CONNECTION,
    Auth0Tenant,
)
from accord.emulators.auth0.wire import Auth0Dialect, api_error, oauth_error, query_error
from accord.emulators.faults import FaultConfig, FaultInjector, Handler


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise api_error(400, "Invalid request payload JSON format") from None
    if not isinstance(body, dict):
        raise api_error(400, "Payload validation error: 'Expected type object'.", "invalid_body")
    return body


async def _token_form(request: Request) -> dict[str, str]:
    """JSON or form-encoded: the SDK sends both (docs/idp/auth0.md#management-api-token)."""
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            form = {k: v for k, v in json.loads(raw or b"{}").items() if isinstance(v, str)}
        except (ValueError, AttributeError):
            raise oauth_error(400, "invalid_request", "Invalid JSON body") from None
    else:
        form = dict(parse_qsl(raw.decode(errors="replace")))
    return form


class _RateLimitHeaders:
    """``x-ratelimit-*`` headers on every response without them (docs/idp/auth0.md#rate-limits)."""

    def __init__(self, app: ASGIApp, faults: FaultInjector) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.faults.headers().items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


class _Api:
    """The handlers; each runs behind ``endpoint`` (faults first, then the bearer check)."""

    def __init__(self, tenant: Auth0Tenant, faults: FaultInjector) -> None:
        self.tenant = tenant
        self.faults = faults

    def endpoint(self, name: str, scope: str | None, handler: Handler) -> Handler:
        async def authorized(request: Request) -> Response:
            if scope:
                self.tenant.authorize(request.headers.get("authorization"), scope)
            return await handler(request)

        return self.faults.endpoint(name, authorized)

    async def token(self, request: Request) -> Response:
        host = request.headers.get("host", "")
        return JSONResponse(self.tenant.issue_token(await _token_form(request), host))

    async def list_users(self, request: Request) -> Response:
        params = request.query_params
        page, per_page = query.paging(params)
        found = self.tenant.search(params.get("q"), params.get("sort"), self.faults.search_visible)
        return JSONResponse(query.listing(found, page, per_page, params))

    async def create_user(self, request: Request) -> Response:
        profile = self.tenant.create_user(await _json_body(request))
        if self.faults.ghost("create_user"):
            return await self.faults.ghost_response()
        return JSONResponse(profile, status_code=201)

    async def get_user(self, request: Request) -> Response:
        # The path arrives URL-decoded: the SDK sends auth0%7C... (docs/idp/auth0.md#user-ids).
        profile = self.tenant.get(request.path_params["id"]).profile
        return JSONResponse(query.project(profile, request.query_params))

    async def update_user(self, request: Request) -> Response:
        body = await _json_body(request)
        return JSONResponse(self.tenant.update_user(request.path_params["id"], body))

    async def delete_user(self, request: Request) -> Response:
        self.tenant.users.pop(request.path_params["id"], None)
        return Response(status_code=204)  # even if unknown (docs/idp/auth0.md#delete-is-idempotent)

    async def users_by_email(self, request: Request) -> Response:
        email = request.query_params.get("email")
        if not email:
            raise query_error("'Missing required property: email'")
        found = self.tenant.by_email(email)
        return JSONResponse([query.project(p, request.query_params) for p in found])

    async def export_users(self, request: Request) -> Response:
        job = export.start(self.tenant, await _json_body(request))
        return JSONResponse(job, status_code=201)

    async def get_job(self, request: Request) -> Response:
        job = export.poll(self.tenant, request.path_params["id"], str(request.base_url))
        return JSONResponse(job)

    async def download_export(self, request: Request) -> Response:
        # Strict on purpose: the location is a signed URL on a storage host, not the tenant, so a
        # client that sends its Management API token there leaks it.
        if "authorization" in request.headers:
            return Response("Authorization header not accepted on a signed URL", status_code=400)
        content = self.tenant.export_files.get(request.path_params["job"])
        if content is None:
            return Response("NoSuchKey", status_code=404)
        if self.tenant.export_damage is not None:
            content = self.tenant.export_damage(content)
        return Response(content, media_type="application/gzip")

    def routes(self) -> list[Route]:
        table = [
            ("/oauth/token", "POST", "token", None, self.token),
            ("/api/v2/users", "GET", "list_users", "read:users", self.list_users),
            ("/api/v2/users", "POST", "create_user", "create:users", self.create_user),
            ("/api/v2/users-by-email", "GET", "users_by_email", "read:users", self.users_by_email),
            ("/api/v2/users/{id:path}", "GET", "get_user", "read:users", self.get_user),
            ("/api/v2/users/{id:path}", "PATCH", "update_user", "update:users", self.update_user),
            ("/api/v2/users/{id:path}", "DELETE", "delete_user", "delete:users", self.delete_user),
            ("/api/v2/jobs/users-exports", "POST", "export_users", "read:users", self.export_users),
            ("/api/v2/jobs/{id}", "GET", "get_job", "read:users", self.get_job),
            ("/user-exports/{job}/{file}", "GET", "download_export", None, self.download_export),
        ]
        return [
            Route(path, self.endpoint(name, scope, handler), methods=[method])
            for path, method, name, scope, handler in table
        ]


def create_app(
    *,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    connection: str = DEFAULT_CONNECTION,
    faults: FaultConfig | None = None,
) -> Starlette:
    """An emulated Auth0 tenant with one database connection, empty, on its own state."""
    injector = FaultInjector(Auth0Dialect(), faults)
    tenant = Auth0Tenant(client_id=client_id, client_secret=client_secret, connection=connection)
    api = _Api(tenant, injector)
    app = Starlette(
        routes=[*api.routes(), *injector.routes()],
        middleware=[Middleware(_RateLimitHeaders, faults=injector)],
    )
    app.state.tenant = tenant
    app.state.faults = injector
    return app
