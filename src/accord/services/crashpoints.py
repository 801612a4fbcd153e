"""Named points between the steps of every flow, where the crash tests kill the process.

``ACCORD_CRASH_AT=<point>`` (settings.crash_at) makes the process SIGKILL itself on reaching that
point: no cleanup, no ``finally``, exactly what a power cut or an OOM kill does. Unset (always,
outside tests) a point costs one comparison.
"""

from __future__ import annotations

import os
import signal
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accord.config import Settings


class CrashPoint(StrEnum):
    AFTER_CLAIM = "after_claim"  # transaction 1 committed
    IDP_CALL_SENT = "idp_call_sent"  # the IdP applied the create/delete; its answer not yet read
    IDP_ANSWERED = "idp_answered"  # the IdP phase is done; its recovery point not yet written
    AFTER_RECOVERY_POINT = "after_recovery_point"  # transaction 2 committed
    BEFORE_FINALIZE_COMMIT = "before_finalize_commit"  # transaction 3 done but not committed
    AFTER_COMMIT = "after_commit"  # transaction 3 committed; the response not yet sent
    # compensation: undoing what a failed operation did
    UNDO_SENT = "undo_sent"  # the IdP applied the compensating delete; its answer not yet read
    UNDO_ANSWERED = "undo_answered"  # the IdP side is undone; the database side not yet
    BEFORE_COMPENSATION_COMMIT = "before_compensation_commit"  # undone, not yet committed
    # the worker's outbox
    MAIL_SENT = "mail_sent"  # the mail server took the message; it is not yet marked sent
    WEBHOOK_SENT = "webhook_sent"  # the receiver answered; the delivery is not yet recorded


COMPENSATION_POINTS = frozenset(
    {CrashPoint.UNDO_SENT, CrashPoint.UNDO_ANSWERED, CrashPoint.BEFORE_COMPENSATION_COMMIT}
)
# The points of the worker's deliveries, after an operation has committed: not an operation's.
DELIVERY_POINTS = frozenset({CrashPoint.MAIL_SENT, CrashPoint.WEBHOOK_SENT})
# The points a successful operation passes through.
OPERATION_POINTS = tuple(
    p for p in CrashPoint if p not in COMPENSATION_POINTS and p not in DELIVERY_POINTS
)


def reach(settings: Settings, point: CrashPoint) -> None:
    """Die here if the settings say so."""
    if settings.crash_at == point:
        os.kill(os.getpid(), signal.SIGKILL)
