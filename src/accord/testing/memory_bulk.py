"""In-memory set-wise creation (``BulkCreates``, domain/bulk_store.py; see ``memory_store.py``).

Each method does for the whole batch what the per-row repositories do one row at a time, with
the same answers as ``adapters/db/bulk.py``: a claim whose e-mail or key is taken is left out
whole, the moves are compare-and-set. ``tests/contracts/test_store_bulk.py`` holds the two
to one contract.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import replace
from uuid import UUID

from accord.domain.bulk_store import BulkClaim, BulkEnsured, BulkFinish, KnownKey
from accord.domain.model import OperationState, RecoveryPoint
from accord.domain.ports import Clock
from accord.domain.records import OperationRecord, UserView
from accord.testing.memory_people import MemoryLinks, MemoryMemberships, MemoryUsers
from accord.testing.memory_tables import Repository, Tables
from accord.testing.memory_work import MemoryOperations, MemoryOutbox


class MemoryBulk(Repository):
    """``BulkCreates`` over the in-memory tables, by way of the per-row repositories."""

    def __init__(self, tables: Tables, clock: Clock, ids: itertools.count[int]) -> None:
        super().__init__(tables, clock, ids)
        self._users = MemoryUsers(tables, clock, ids)
        self._operations = MemoryOperations(tables, clock, ids)
        self._links = MemoryLinks(tables, clock, ids)
        self._memberships = MemoryMemberships(tables, clock, ids)
        self._outbox = MemoryOutbox(tables, clock, ids)

    async def known(self, caller: str, keys: Sequence[str]) -> dict[str, KnownKey]:
        wanted = set(keys)
        return {
            op.idempotency_key: KnownKey(
                op.id, str(op.state), op.request_digest, copy.deepcopy(op.result)
            )
            for op in self.t.operations.values()
            if op.caller == caller and op.idempotency_key in wanted
        }

    async def taken_emails(self, emails: Sequence[str]) -> set[str]:
        wanted = set(emails)
        return {u.email for u in self.t.users.values() if u.email in wanted}

    async def claim(self, claims: Sequence[BulkClaim]) -> set[UUID]:
        claimed: set[UUID] = set()
        for c in sorted(claims, key=lambda c: c.email):
            new = c.operation
            if new.idempotency_key is not None and await self._operations.find_by_key(
                new.caller, new.idempotency_key
            ):
                continue  # the key's operation exists: nothing of this claim is written
            user_id = await self._users.claim(
                user_id=c.user_id, email=c.email, full_name=c.full_name, created_by=c.created_by
            )
            if user_id is None:
                continue  # the e-mail is taken
            await self._operations.insert(new)
            self.t.operations[new.id] = replace(
                self.t.operations[new.id], user_id=user_id, organization_id=c.organization_id
            )
            claimed.add(new.id)
        return claimed

    async def unclaim(self, operation_ids: Sequence[UUID]) -> None:
        for op_id in operation_ids:
            op = self.t.operations.pop(op_id, None)
            if op is not None and op.user_id is not None:
                await self._users.delete(op.user_id)

    async def release(self, operation_ids: Sequence[UUID]) -> None:
        for op_id in operation_ids:
            op = self.t.operations.get(op_id)
            if op is not None and op.state == OperationState.OPEN:
                self.t.operations[op_id] = replace(
                    op, lease_until=None, attempts=op.attempts - 1, updated_at=self.now()
                )

    async def ensured(self, answers: Sequence[BulkEnsured]) -> list[OperationRecord]:
        moved = []
        for a in answers:
            op = await self._operations.advance(
                a.operation_id,
                RecoveryPoint.CLAIMED,
                recovery_point=RecoveryPoint.IDP_ENSURED,
                remote_id=a.remote_id,
                created_remote=a.created_remote,
                flow_state=a.flow_state,
            )
            if op is not None:
                moved.append(op)
        return moved

    async def holders(self, provider: str, remote_ids: Sequence[str]) -> dict[str, UUID]:
        held = {r: await self._links.holder(provider, r) for r in remote_ids}
        return {r: user_id for r, user_id in held.items() if user_id is not None}

    async def lock_ensured(self, ensured: Sequence[OperationRecord]) -> list[OperationRecord]:
        by_id = {op.id: op for op in ensured}
        return [
            by_id[op.id]
            for op in sorted(self.t.operations.values(), key=lambda op: op.id)
            if op.id in by_id
            and op.state == OperationState.OPEN
            and op.recovery_point == RecoveryPoint.IDP_ENSURED
        ]

    async def link_and_join(self, items: Sequence[BulkFinish]) -> None:
        for i in items:
            op = i.operation
            assert op.user_id is not None and op.remote_id is not None
            assert op.organization_id is not None
            await self._links.link(
                user_id=op.user_id,
                provider=i.provider,
                remote_id=op.remote_id,
                created_by_accord=i.created_by_accord,
            )
            await self._users.update(
                op.user_id,
                status=i.status,
                full_name=op.request["full_name"],
                require_password_change=False,
            )
            await self._memberships.put(
                user_id=op.user_id,
                organization_id=op.organization_id,
                role=i.role,
                permissions=i.permissions,
            )

    async def views(self, user_ids: Sequence[UUID]) -> list[UserView]:
        found = [await self._users.view(user_id) for user_id in user_ids]
        return [v for v in found if v is not None]

    async def finish(self, items: Sequence[BulkFinish]) -> None:
        for i in items:
            if i.invitation is not None:
                await self._outbox.enqueue(**i.invitation)
            await self._operations.advance(
                i.operation.id,
                RecoveryPoint.IDP_ENSURED,
                recovery_point=RecoveryPoint.FINISHED,
                state=OperationState.SUCCEEDED,
                result=i.result,
                lease_until=None,
                error=None,
            )
