"""The embedded mailbox (platform token): the mail accord kept because no SMTP server is set."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from accord.entrypoints.api.problems import AUTHENTICATED, DATABASE, documented
from accord.entrypoints.api.schemas import NO_CONTROL_CHARACTERS, MailMessage, MailPage
from accord.entrypoints.api.security import AccordDep, PlatformCaller
from accord.services import mailbox, reads

router = APIRouter(tags=["mailbox"])

SECRETS = (
    "Without SMTP settings (`ACCORD_SMTP__HOST` unset) accord keeps outgoing mail here instead "
    "of sending it. Its links (set-password, invitation, verification) work for whoever reads "
    "them: platform tokens only (403 `forbidden` for an organization token); messages are "
    "deleted after `ACCORD_MAILBOX_RETENTION_DAYS` (7 by default)."
)


@router.get(
    "/api/admin/mailbox",
    response_model=MailPage,
    responses=documented(
        "invalid_input", "email_invalid", "email_confusable", *AUTHENTICATED, *DATABASE
    ),
    summary="List the embedded mailbox, newest first (platform token)",
    description=SECRETS,
)
async def list_mail(
    accord: AccordDep,
    caller: PlatformCaller,
    to: Annotated[
        str | None,
        Query(
            description="Only mail to this address.",
            max_length=320,
            pattern=NO_CONTROL_CHARACTERS,
        ),
    ] = None,
    cursor: Annotated[
        str | None, Query(description="`next_cursor` of the previous page.", pattern=r"^\d{1,18}$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=reads.MAX_PAGE_SIZE)] = 50,
) -> dict[str, Any]:
    """A page of messages (without their text) and the cursor of the next."""
    return await mailbox.list_mail(accord, caller=caller, to=to, cursor=cursor, limit=limit)


@router.get(
    "/api/admin/mailbox/{message_id}",
    response_model=MailMessage,
    responses=documented("invalid_input", "mail_not_found", *AUTHENTICATED, *DATABASE),
    summary="Read one message of the embedded mailbox (platform token)",
    description=SECRETS,
)
async def get_mail(
    message_id: Annotated[int, Path(ge=1, le=10**18)], accord: AccordDep, caller: PlatformCaller
) -> dict[str, Any]:
    """One message with its text and links."""
    return await mailbox.get_mail(accord, message_id, caller=caller)
