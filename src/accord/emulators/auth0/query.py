"""``GET /api/v2/users``: the part of Auth0's Lucene search the emulator knows, its paging cap and
``fields`` projection (docs/idp/auth0.md#listing-and-paging-limits)."""

from __future__ import annotations

import re
from typing import Any

from accord.emulators.auth0.wire import api_error, query_error

# At most 1000 results reachable, 100 a page, 50 without paging parameters
# (docs/idp/auth0.md#listing-and-paging-limits).
PAGING_CAP = 1000
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 50
NORMALIZED_FIELDS = frozenset({"email", "name", "given_name", "family_name", "nickname"})
PAGING_MESSAGE = (  # docs/idp/auth0.md#error-bodies
    "You can only page through the first 1000 records. "
    "See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation"
)
_QUERY_TERM = re.compile(r'^(?P<field>[\w.]+):(?P<value>"[^"]*"|\S+)$')


def _search_values(profile: dict[str, Any], field_name: str) -> list[str]:
    if field_name == "email.domain":
        return [str(profile.get("email", "")).rpartition("@")[2]]
    values = [profile]
    for key in field_name.split("."):
        values = [v[key] for v in values if isinstance(v, dict) and key in v]
        values = [x for v in values for x in (v if isinstance(v, list) else [v])]
    return [str(v) for v in values]


def parse_query(q: str) -> list[tuple[str, str, bool]]:
    """Lucene, the subset the emulator knows: ``field:value`` / ``field:"value"`` / ``field:pre*``
    terms joined by AND; ``*`` matches all."""
    terms = []
    for part in (p.strip() for p in q.split(" AND ")):
        if part in ("", "*", "*:*"):
            continue
        match = _QUERY_TERM.match(part)
        if match is None:
            raise query_error(f"unsupported query '{q}'")
        value = match["value"]
        prefix = not value.startswith('"') and value.endswith("*")
        value = value.strip('"')
        terms.append((match["field"], value.rstrip("*") if prefix else value, prefix))
    return terms


def matches(profile: dict[str, Any], terms: list[tuple[str, str, bool]]) -> bool:
    for field_name, wanted, prefix in terms:
        fold = field_name in NORMALIZED_FIELDS  # search is case-insensitive on these only
        values = [v.lower() if fold else v for v in _search_values(profile, field_name)]
        wanted = wanted.lower() if fold else wanted
        if not any(v == wanted or (prefix and v.startswith(wanted)) for v in values):
            return False
    return True


def project(profile: dict[str, Any], params: Any) -> dict[str, Any]:
    """``fields`` / ``include_fields``."""
    names = {n for n in (params.get("fields") or "").split(",") if n}
    if not names:
        return profile
    include = (params.get("include_fields") or "true").lower() != "false"
    return {k: v for k, v in profile.items() if (k in names) == include}


def _int_param(params: Any, name: str, default: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise query_error(f"'Invalid value {raw}' on property {name}")
    return value


def paging(params: Any) -> tuple[int, int]:
    """``page`` and ``per_page``, refused as Auth0 refuses them."""
    page = _int_param(params, "page", 0)
    per_page = _int_param(params, "per_page", DEFAULT_PER_PAGE)
    if per_page > MAX_PER_PAGE:
        raise query_error(f"'per_page' must be at most {MAX_PER_PAGE}")
    if page * per_page >= PAGING_CAP:
        raise api_error(400, PAGING_MESSAGE, "invalid_paging")
    return page, per_page


def listing(found: list[dict[str, Any]], page: int, per_page: int, params: Any) -> Any:
    """One page of ``found``: a bare array unless ``include_totals=true``."""
    start = page * per_page
    users = [project(p, params) for p in found[start : min(start + per_page, PAGING_CAP)]]
    if (params.get("include_totals") or "").lower() != "true":
        return users
    totals = {"start": start, "limit": per_page, "length": len(users), "total": len(found)}
    return {**totals, "users": users}
