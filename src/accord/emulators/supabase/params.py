"""Reading admin requests as GoTrue does: JSON bodies into ``AdminUserParams``, e-mails and ids,
and the list's paging, sort and ``Link`` header (docs/idp/supabase.md#listing-and-pagination)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import quote_plus, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse

from accord.emulators.supabase.errors import api_error

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_STRINGS = ("id", "aud", "role", "email", "phone", "password", "password_hash", "ban_duration")
_FIELD_TYPES: dict[str, type] = {
    **dict.fromkeys(_STRINGS, str),
    **dict.fromkeys(("email_confirm", "phone_confirm", "should_soft_delete"), bool),
    **dict.fromkeys(("user_metadata", "app_metadata"), dict),
}


async def parse_params(request: Request) -> dict[str, Any] | JSONResponse:
    """The JSON body as GoTrue's AdminUserParams would decode it, or its 400."""
    try:
        body = json.loads(await request.body())
        if not isinstance(body, dict):
            raise ValueError("json: cannot unmarshal into Go value of type api.AdminUserParams")
        for key, value in body.items():
            expected = _FIELD_TYPES.get(key)
            if expected and value is not None and not isinstance(value, expected):
                raise ValueError(f"json: cannot unmarshal into Go struct field .{key}")
    except ValueError as exc:
        return api_error(400, "bad_json", f"Could not parse request body as JSON: {exc}")
    return body


def validate_email(email: str) -> str | JSONResponse:
    """The e-mail lower-cased, as GoTrue stores it, or its 400."""
    if len(email) > 255:
        return api_error(400, "validation_failed", "An email address is too long")
    if not _EMAIL.match(email):
        return api_error(
            400, "validation_failed", "Unable to validate email address: invalid format"
        )
    return email.lower()  # mail.go validateEmail


def validate_id(raw: str) -> str | JSONResponse:
    """A caller-chosen user id in canonical form, or its 400."""
    try:
        parsed = uuid.UUID(raw)
    except ValueError:
        return api_error(400, "validation_failed", "ID must conform to the uuid v4 format")
    if parsed.int == 0:
        return api_error(400, "validation_failed", "ID cannot be a nil uuid")
    return str(parsed)


def uint(raw: str, default: int) -> int:
    """A paging parameter; ValueError in strconv's words."""
    if raw == "":
        return default  # "page=" is absent (docs/idp/supabase.md#listing-and-pagination)
    if not raw.isdigit():
        raise ValueError(f'strconv.ParseUint: parsing "{raw}": invalid syntax')
    return int(raw)


def sort_descending(request: Request) -> bool | JSONResponse:
    """Whether ``sort`` asks for the newest first (the default), or its 400."""
    descending = True  # default created_at desc (admin.go adminUsers)
    for value in request.query_params.getlist("sort"):
        name, _, direction = value.partition(" ")
        if name != "created_at" or direction.upper() not in ("", "ASC", "DESC"):
            message = f"Bad Sort Parameters: bad field or direction for sort '{value}'"
            return api_error(400, "validation_failed", message)
        descending = direction.upper() != "ASC"
    return descending


def link(request: Request, page: int, per_page: int, total: int) -> str:
    """pagination.go addPaginationHeaders: URLs as GoTrue sees them (gateway prefix stripped)."""
    pages = -(-total // per_page)
    query = dict(request.query_params)

    def url(to: int) -> str:
        return "/admin/users?" + urlencode(
            sorted({**query, "page": str(to)}.items()), quote_via=quote_plus
        )

    head = f'<{url(page + 1)}>; rel="next", ' if pages > page else ""
    return f'{head}<{url(pages)}>; rel="last"'
