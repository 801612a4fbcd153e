"""Operations: the state of a provisioning operation, e.g. one that answered 202."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter

from accord.entrypoints.api.problems import DATABASE, documented
from accord.entrypoints.api.schemas import Operation
from accord.entrypoints.api.security import AccordDep, CallerOrPublic
from accord.services.operations import get_operation

router = APIRouter(tags=["operations"])


@router.get(
    "/api/operations/{operation_id}",
    response_model=Operation,
    responses=documented(
        "invalid_input", "invalid_acting_user", "operation_not_found", "unauthenticated", *DATABASE
    ),
    summary="Read an operation",
    description=(
        "An operation is visible to the token that started it and to platform tokens. Without "
        "a token, only operations started by public requests (registrations) are visible to "
        "whoever holds their id, as the 202 `Location` of a registration gives it."
    ),
    openapi_extra={"security": [{}]},  # the token is optional here
)
async def read_operation(
    operation_id: UUID, accord: AccordDep, caller: CallerOrPublic
) -> dict[str, Any]:
    """An operation's state, and its stored result once it succeeded."""
    return await get_operation(accord, operation_id, caller=caller)
