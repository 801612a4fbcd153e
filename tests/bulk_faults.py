"""Faults in the built-in IdP's bulk calls (``CreatesMany``), for the set-wise paths' tests: the
import (tests/drift/test_bulk_import_fallbacks.py) and the worker's resume
(tests/worker/test_set_wise_resume.py). The IdP itself stays real: only the calls named fail,
everything else reaches the local IdP on the test's database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from accord.domain import errors
from accord.domain.ports import IdentityProvider, NewRemoteUser, RemoteUser

Fault = Callable[[IdentityProvider, Sequence[NewRemoteUser]], Awaitable[list[RemoteUser]]]


class BulkFaults:
    """The built-in IdP, whose next ``create_many`` calls run the faults queued for them and
    whose next ``existing`` / ``find_many`` calls fail as told."""

    def __init__(self, inner: IdentityProvider) -> None:
        self._inner = inner
        self.name = inner.name
        self.faults: list[Fault] = []
        self.calls = 0
        self.existing_fails = 0  # the next calls of ``existing`` that fail
        self.find_faults: list[errors.AccordError] = []  # raised by the next ``find_many`` calls
        self.finds = 0

    async def create_many(self, users: Sequence[NewRemoteUser]) -> list[RemoteUser]:
        self.calls += 1
        if self.faults:
            return await self.faults.pop(0)(self._inner, users)
        return await self._inner.create_many(users)  # type: ignore[attr-defined, no-any-return]

    async def existing(self, emails: Sequence[str]) -> set[str]:
        if self.existing_fails:
            self.existing_fails -= 1
            raise errors.ProviderUnavailable("the IdP is down")
        return await self._inner.existing(emails)  # type: ignore[attr-defined, no-any-return]

    async def find_many(self, emails: Sequence[str]) -> list[RemoteUser]:
        self.finds += 1
        if self.find_faults:
            raise self.find_faults.pop(0)
        return await self._inner.find_many(emails)  # type: ignore[attr-defined, no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def down(made: int = 0, error: errors.AccordError | None = None) -> Fault:
    """``create_many`` creates the first ``made`` identities, then fails (IdP down, or a
    generic IdP error) without saying which it made."""

    async def fault(inner: Any, users: Sequence[NewRemoteUser]) -> list[RemoteUser]:
        if made:
            await inner.create_many(list(users)[:made])
        raise error or errors.ProviderUnavailable("bulk create: the IdP is down")

    return fault


def per_row_down(m: pytest.MonkeyPatch, idp: BulkFaults) -> None:
    """The per-row calls (look-up, get, create) find the IdP down too, while ``m`` lasts."""

    async def create_down(user: NewRemoteUser) -> RemoteUser:
        raise errors.ProviderUnavailable("the IdP is down")

    async def get_down(remote_id: str) -> RemoteUser:
        raise errors.ProviderUnavailable("the IdP is down")

    async def find_down(email: str) -> RemoteUser | None:
        raise errors.ProviderUnavailable("the IdP is down")

    m.setattr(idp._inner, "create", create_down)
    m.setattr(idp._inner, "get", get_down)
    m.setattr(idp._inner, "find_by_email", find_down)


# The IdP errors a whole bulk call may meet: each leaves what it covers to the per-row path.
BULK_ERRORS = pytest.mark.parametrize(
    "error",
    [
        errors.ProviderUnavailable("the IdP is down"),
        errors.OutcomeUnknown("the answer was lost"),
        errors.ProviderError("the IdP answered 500"),
        errors.RemoteRejected("the IdP refused the batch"),
    ],
    ids=["unavailable", "outcome_unknown", "idp_error", "rejected"],
)
