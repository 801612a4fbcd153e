"""What the SCIM tests share: a SCIM token for each of a test's two organizations, and the
request shapes the IdPs send."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from accord.bootstrap import Accord
from accord.services import scim_tokens
from tests.api.conftest import Tokens

BASE = "/scim/v2"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


@dataclass
class Scim:
    """SCIM clients of organizations A and B of one test."""

    http: httpx.AsyncClient
    creds: Tokens
    token_a: str
    token_b: str

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token or self.token_a}",
            "Content-Type": "application/scim+json",
        }

    async def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        return await self.http.get(BASE + path, headers=self.headers(token), params=params)

    async def post(self, path: str, body: Any, token: str | None = None) -> httpx.Response:
        return await self.http.post(BASE + path, headers=self.headers(token), json=body)

    async def put(self, path: str, body: Any, token: str | None = None) -> httpx.Response:
        return await self.http.put(BASE + path, headers=self.headers(token), json=body)

    async def patch(
        self, path: str, ops: list[dict[str, Any]], token: str | None = None
    ) -> httpx.Response:
        body = {"schemas": [PATCH_SCHEMA], "Operations": ops}
        return await self.http.patch(BASE + path, headers=self.headers(token), json=body)

    async def delete(self, path: str, token: str | None = None) -> httpx.Response:
        return await self.http.delete(BASE + path, headers=self.headers(token))


async def scim_clients(accord: Accord, http: httpx.AsyncClient, creds: Tokens) -> Scim:
    token_a, _ = await scim_tokens.create_scim_token(accord, creds.a, name="okta")
    token_b, _ = await scim_tokens.create_scim_token(accord, creds.b, name="entra")
    return Scim(http, creds, token_a, token_b)


def okta_user(
    user_name: str, *, given: str = "Ada", family: str = "Lovelace", external_id: str | None = None
) -> dict[str, Any]:
    """The body Okta POSTs (its SPEC test suite's shape)."""
    body: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }
    if external_id:
        body["externalId"] = external_id
    return body


def entra_user(user_name: str, *, external_id: str) -> dict[str, Any]:
    """The body Microsoft Entra ID POSTs (its provisioning service's default mapping)."""
    return {
        "schemas": [USER_SCHEMA, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": external_id,
        "userName": user_name,
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Grace Hopper", "familyName": "Hopper", "givenName": "Grace"},
        "displayName": "Grace Hopper",
        "title": "Rear admiral",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Navy"},
    }


def scim_error(
    response: httpx.Response, status: int, scim_type: str | None = None
) -> dict[str, Any]:
    """Assert ``response`` is a SCIM Error with this status (and scimType); return it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type, body
    assert body["detail"]
    return body
