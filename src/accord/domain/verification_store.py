"""The store port's repository of pending registrations (e-mail verification links).

A registration with ``registration.verify_email`` waits here until its link is used: the
request, the chosen password sealed (G9), and the SHA-256 digest of the link's token, set when
the mail is sent. Using the link removes the row (and every other pending registration of the
same e-mail) in the transaction that claims the account, so exactly one use succeeds.
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from accord.domain.records import NewVerification, VerificationRecord


class Verifications(Protocol):
    async def insert(self, new: NewVerification) -> None: ...

    async def issue_link(self, verification_id: UUID, digest: str) -> VerificationRecord | None:
        """Store the digest of a new link for an unexpired registration (replacing an older
        link's); None if it was used or has expired."""
        ...

    async def find_live(self, digest: str) -> VerificationRecord | None:
        """The unexpired registration whose link has this digest."""
        ...

    async def consume(self, verification_id: UUID) -> bool:
        """Use it up, with every other pending registration of its e-mail; False if it was
        used or expired already (of concurrent callers, exactly one gets True)."""
        ...

    async def expire(self) -> int:
        """Delete registrations whose link has expired (their sealed passwords with them)."""
        ...
