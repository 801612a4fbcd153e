"""How the emulated Keycloak shows and finds users: the UserRepresentation, the search
parameters of ``GET /users`` and its paging (docs/idp/keycloak.md#search)."""

from __future__ import annotations

import re
from typing import Any

from accord.emulators.faults import Answer

ROOT_ATTRIBUTES = ("username", "email", "firstName", "lastName")


def representation(user: dict[str, Any], *, brief: bool = False) -> dict[str, Any]:
    """A UserRepresentation in Keycloak's field order, nulls left out."""
    rep = {k: user[k] for k in ("id", "username", "firstName", "lastName", "email")}
    rep["emailVerified"] = user["emailVerified"]
    if user["attributes"] and not brief:
        rep["attributes"] = user["attributes"]
    rep.update(createdTimestamp=user["createdTimestamp"], enabled=user["enabled"], totp=False)
    rep.update(disableableCredentialTypes=[], requiredActions=user["requiredActions"])
    rep["notBefore"] = 0
    if not brief:
        rep["access"] = {"manageGroupMembership": True, "view": True, "mapRoles": True}
        rep["access"].update(impersonate=False, manage=True)
    return {k: v for k, v in rep.items() if v is not None}


def is_true(value: str | None) -> bool:
    """A boolean query value, read case-insensitively: python-keycloak sends True/False."""
    return (value or "").lower() == "true"


def matches(user: dict[str, Any], params: dict[str, str]) -> bool:
    """Whether ``user`` is found by the search parameters ``params``."""
    exact = is_true(params.get("exact"))
    for name in ROOT_ATTRIBUTES:
        if name in params:  # substring unless exact=true (docs/idp/keycloak.md#search)
            have, wanted = (user[name] or "").lower(), params[name].lower()
            if (have != wanted) if exact else (wanted not in have):
                return False
    if "search" in params and not _search_matches(user, params["search"]):
        return False
    for flag in ("enabled", "emailVerified"):
        if flag in params and user[flag] != is_true(params[flag]):
            return False
    pairs = (term.partition(":") for term in params.get("q", "").split())
    return all(value in user["attributes"].get(key, []) for key, _, value in pairs)


def _search_matches(user: dict[str, Any], search: str) -> bool:
    # A prefix match since keycloak#8346, "*" a wildcard, quotes for exact; exact=... does not
    # apply (docs/idp/keycloak.md#search).
    search = search.strip().lower()
    if len(search) > 1 and search.startswith('"') and search.endswith('"'):
        pattern = re.escape(search[1:-1])
    else:
        pattern = re.escape(search).replace(r"\*", ".*") + ".*"
    fields = (user[n] for n in ROOT_ATTRIBUTES)
    return any(re.fullmatch(pattern, (value or "").lower()) for value in fields)


def paging(params: dict[str, str]) -> tuple[int, int]:
    """``first`` and ``max``: an offset (-1, read as 0, by default) and a page size (100)."""
    try:
        return max(0, int(params.get("first", -1))), int(params.get("max", 100))
    except ValueError:
        raise Answer.json(400, error="invalid_request", error_description="Bad paging") from None
