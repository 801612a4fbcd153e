"""The emulated Keycloak's HTTP side: the realm's token endpoint and the Admin REST API's user
routes, each behind the fault injector, then the token and role check."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accord.emulators.faults import Answer, FaultConfig, FaultInjector, Handler, retry_after
from accord.emulators.keycloak.realm import (
    ALL_ROLES,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REALM,
    Realm,
)
from accord.emulators.keycloak.search import is_true, paging, representation

BAD_CLIENT = "Invalid client or Invalid client credentials"


class KeycloakDialect:
    """Keycloak's faults; its 429s come from proxies (docs/idp/keycloak.md#rate-limiting)."""

    def server_error(self, status: int) -> Response:
        return JSONResponse({"error": "unknown_error"}, status_code=status)

    def rate_limited(self, limit: int, reset_epoch: int) -> Response:
        headers = {"Retry-After": retry_after(reset_epoch)}
        return JSONResponse({"error": "too_many_requests"}, status_code=429, headers=headers)

    def rate_limit_headers(self, limit: int, remaining: int, reset_epoch: int) -> dict[str, str]:
        return {}


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise Answer.json(400, error="invalid_request", error_description="Cannot parse the JSON")
    return body


class _Api:
    """The routes of one emulated Keycloak server, bound to its realm and injector."""

    def __init__(self, realm: Realm, faults: FaultInjector) -> None:
        self.realm = realm
        self.faults = faults

    def guard(self, endpoint: str, role: str | None, handler: Handler) -> Handler:
        """Faults first (they stand for the network or a proxy), then token and realm."""

        async def checked(request: Request) -> Response:
            if role is not None:
                self.realm.authorize(request, role)
            if request.path_params["realm"] != self.realm.name:
                raise Answer.json(404, error="Realm not found." if role else "Realm does not exist")
            return await handler(request)

        return self.faults.endpoint(endpoint, checked)

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        if not form.get("grant_type"):
            raise Answer.json(
                400, error="invalid_request", error_description="Missing form parameter: grant_type"
            )
        client_id, secret = _basic_credentials(request) or (
            form.get("client_id"),
            form.get("client_secret"),
        )
        # Unknown client, then wrong secret (docs/idp/keycloak.md#admin-token)
        if client_id != self.realm.client_id:
            raise Answer.json(401, error="invalid_client", error_description=BAD_CLIENT)
        if secret != self.realm.client_secret:
            raise Answer.json(401, error="unauthorized_client", error_description=BAD_CLIENT)
        if form["grant_type"] != "client_credentials":
            raise Answer.json(400, error="unsupported_grant_type", error_description="Unsupported")
        return JSONResponse(self.realm.issue_token())

    async def create_user(self, request: Request) -> Response:
        user = self.realm.create(await _json(request))
        location = f"{str(request.base_url).rstrip('/')}{request.url.path}/{user['id']}"
        if self.faults.ghost("create_user"):  # stored; the answer is lost
            return await self.faults.ghost_response()
        # An empty body: the id is in Location (docs/idp/keycloak.md#create).
        return Response(status_code=201, headers={"Location": location})

    async def list_users(self, request: Request) -> Response:
        params = dict(request.query_params)
        first, size = paging(params)
        brief = is_true(params.get("briefRepresentation"))
        page = self.realm.search(params)[first : first + size]
        return JSONResponse([representation(u, brief=brief) for u in page])

    async def count_users(self, request: Request) -> Response:
        return JSONResponse(len(self.realm.search(dict(request.query_params))))

    async def get_user(self, request: Request) -> Response:
        return JSONResponse(representation(self.realm.user(request.path_params["id"])))

    async def update_user(self, request: Request) -> Response:
        self.realm.replace(request.path_params["id"], await _json(request))
        return Response(status_code=204)

    async def reset_password(self, request: Request) -> Response:
        self.realm.set_password(request.path_params["id"], await _json(request))
        return Response(status_code=204)

    async def delete_user(self, request: Request) -> Response:
        self.realm.delete(request.path_params["id"])
        return Response(status_code=204)

    async def get_profile(self, request: Request) -> Response:
        return JSONResponse(self.realm.profile())

    async def put_profile(self, request: Request) -> Response:
        self.realm.configure_profile(await _json(request))
        return JSONResponse(self.realm.profile())

    def routes(self) -> list[Route]:
        users = "/admin/realms/{realm}/users"
        read, write = "view-users", "manage-users"
        table: list[tuple[str, str, str, str | None, Handler]] = [
            ("/realms/{realm}/protocol/openid-connect/token", "POST", "token", None, self.token),
            (users, "POST", "create_user", write, self.create_user),
            (users, "GET", "list_users", read, self.list_users),
            (f"{users}/count", "GET", "count_users", read, self.count_users),
            (f"{users}/profile", "GET", "get_profile", read, self.get_profile),
            (f"{users}/profile", "PUT", "put_profile", write, self.put_profile),
            (f"{users}/{{id}}", "GET", "get_user", read, self.get_user),
            (f"{users}/{{id}}", "PUT", "update_user", write, self.update_user),
            (f"{users}/{{id}}", "DELETE", "delete_user", write, self.delete_user),
            (f"{users}/{{id}}/reset-password", "PUT", "reset_password", write, self.reset_password),
        ]
        return [
            Route(path, self._named(endpoint, role, handler), methods=[method])
            for path, method, endpoint, role, handler in table
        ]

    def _named(self, endpoint: str, role: str | None, handler: Handler) -> Handler:
        if endpoint != "list_users":
            return self.guard(endpoint, role, handler)
        listing, searching = (self.guard(e, role, handler) for e in ("list_users", "search_users"))

        async def route(request: Request) -> Response:  # a filtered GET /users is a search
            filtered = set(request.query_params) - {"first", "max", "briefRepresentation"}
            return await (searching if filtered else listing)(request)

        return route


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    return client_id, secret


def create_app(
    *,
    realm: str = DEFAULT_REALM,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    unmanaged_attributes: bool = True,
    faults: FaultConfig | None = None,
    password_min_length: int = 8,
    token_lifespan: int = 300,
    roles: frozenset[str] = ALL_ROLES,
) -> Starlette:
    """An emulated Keycloak serving one realm and one confidential service-account client."""
    state = Realm(
        realm,
        client_id,
        client_secret,
        unmanaged_policy="ENABLED" if unmanaged_attributes else None,
        password_min_length=password_min_length,
        token_lifespan=token_lifespan,
        roles=roles,
    )
    injector = FaultInjector(KeycloakDialect(), faults)
    app = Starlette(routes=[*_Api(state, injector).routes(), *injector.routes()])
    app.state.keycloak = state
    app.state.faults = injector
    return app
