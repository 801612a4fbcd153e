"""Extension hooks: application code that runs inside the finalize transaction.

A hook receives the transaction's connection (on PostgreSQL, a SQLAlchemy ``AsyncConnection``)
and the finished user, so it can write to the application's own tables (an employee record,
page permissions) atomically with accord's rows.
If it raises, the whole operation fails and is compensated (G7).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class ProvisionedUser:
    """What a hook learns about the user being finalized."""

    user_id: UUID
    email: str
    full_name: str
    organization_id: UUID
    role: str
    permissions: tuple[str, ...]
    operation_kind: str


Hook = Callable[[Any, ProvisionedUser], Awaitable[Any]]


@dataclass
class Hooks:
    """The registered hooks, run in registration order."""

    on_user_provisioned: list[Hook] = field(default_factory=list)

    def register(self, hook: Hook) -> Hook:
        """Register ``hook``; usable as a decorator."""
        self.on_user_provisioned.append(hook)
        return hook
