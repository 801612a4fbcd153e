"""Ids as callers give them."""

from __future__ import annotations

from uuid import UUID

from accord.domain.errors import InvalidInput


def parse_id(value: str | UUID, what: str) -> UUID:
    """``value`` as a UUID; InvalidInput naming ``what`` if it is not one."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise InvalidInput(f"{what} must be a UUID, not {value!r}.") from None
