"""In-memory pending registrations (see ``memory_store.py``)."""

from __future__ import annotations

import copy
from dataclasses import asdict
from uuid import UUID

from accord.domain.records import NewVerification, VerificationRecord
from accord.testing.memory_tables import Repository


class MemoryVerifications(Repository):
    def _live(self, record: VerificationRecord) -> bool:
        return record.expires_at > self.now()

    async def insert(self, new: NewVerification) -> None:
        record = VerificationRecord(**asdict(new), created_at=self.now())
        self.t.verifications[new.id] = (None, copy.deepcopy(record))

    async def issue_link(self, verification_id: UUID, digest: str) -> VerificationRecord | None:
        found = self.t.verifications.get(verification_id)
        if found is None or not self._live(found[1]):
            return None
        self.t.verifications[verification_id] = (digest, found[1])
        return copy.deepcopy(found[1])

    async def find_live(self, digest: str) -> VerificationRecord | None:
        found = (r for d, r in self.t.verifications.values() if d == digest and self._live(r))
        return copy.deepcopy(next(found, None))

    async def consume(self, verification_id: UUID) -> bool:
        found = self.t.verifications.get(verification_id)
        if found is None or not self._live(found[1]):
            return False
        email = found[1].email
        for key in [k for k, (_, r) in self.t.verifications.items() if r.email == email]:
            del self.t.verifications[key]
        return True

    async def expire(self) -> int:
        gone = [k for k, (_, r) in self.t.verifications.items() if not self._live(r)]
        for key in gone:
            del self.t.verifications[key]
        return len(gone)
