"""An in-memory identity provider that follows a failure script.

Use it to test code that provisions through accord without any IdP::

    idp = FakeIdentityProvider()
    idp.script("create", Fault.GHOST)       # the next create stores the user, then "times out"
    idp.script("create", Fault.UNAVAILABLE, times=3)

    idp.script("delete", Fault.UNAVAILABLE, after=2)  # two deletes go through, the third fails

Each scripted fault is consumed by the next call of that method, in order. ``calls`` records
every call, so a test can assert what reached the IdP.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import replace
from enum import StrEnum

from accord.domain.errors import (
    OutcomeUnknown,
    ProviderMisconfigured,
    ProviderUnavailable,
    RemoteConflict,
    RemoteNotFound,
    RemoteRejected,
)
from accord.domain.ports import NewRemoteUser, RemoteUser


class Fault(StrEnum):
    UNAVAILABLE = "unavailable"  # 5xx: nothing happened
    RATE_LIMITED = "rate_limited"  # 429: nothing happened; retry after a second
    TIMEOUT = "timeout"  # no answer, nothing happened (the caller cannot know)
    GHOST = "ghost"  # the write happened, but the answer was lost
    REJECTED = "rejected"  # 4xx: refused
    MISCONFIGURED = "misconfigured"  # 401/403
    CRASH = "crash"  # the calling process dies mid-call (raises SimulatedCrash)


class SimulatedCrash(BaseException):
    """The process "died" here: nothing in accord catches it, no phase completes, the lease
    stays held until it expires, exactly as after a kill -9 (but within one test process)."""


class FakeIdentityProvider:
    """The ``fake`` IdP: a dict of users plus a queue of faults per method."""

    name = "fake"

    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.users: dict[str, RemoteUser] = {}
        self.calls: list[tuple[str, str]] = []
        self._faults: dict[str, deque[Fault | None]] = defaultdict(deque)  # None: no fault
        self._lock = asyncio.Lock()

    # -- scripting -----------------------------------------------------------------------------

    def script(self, method: str, fault: Fault | str, *, times: int = 1, after: int = 0) -> None:
        """Make the next ``times`` calls of ``method`` fail with ``fault``, once ``after``
        more calls have gone through."""
        self._faults[method].extend([None] * after + [Fault(fault)] * times)

    def clear_script(self) -> None:
        self._faults.clear()

    async def create_direct(self, email: str, full_name: str | None = None) -> RemoteUser:
        """An identity made outside accord (another system sharing the IdP): foreign to it."""
        remote = RemoteUser(f"{self.name}|foreign-{len(self.users)}", email, full_name, None)
        self.users[remote.remote_id] = remote
        return remote

    def remote_id_for(self, user_id: object) -> str:
        return f"{self.name}|{user_id}"

    def _next_fault(self, method: str, subject: str) -> Fault | None:
        self.calls.append((method, subject))
        queue = self._faults.get(method)
        return queue.popleft() if queue else None

    @staticmethod
    def _raise_before(fault: Fault | None) -> None:
        if fault is Fault.UNAVAILABLE:
            raise ProviderUnavailable("fake IdP: 503")
        if fault is Fault.RATE_LIMITED:
            raise ProviderUnavailable("fake IdP: 429", retry_after=1.0)
        if fault is Fault.TIMEOUT:
            raise OutcomeUnknown("fake IdP: timed out")
        if fault is Fault.REJECTED:
            raise RemoteRejected("fake IdP: request rejected")
        if fault is Fault.MISCONFIGURED:
            raise ProviderMisconfigured("fake IdP: 401 invalid credentials")
        if fault is Fault.CRASH:
            raise SimulatedCrash(f"simulated crash during {fault}")

    # -- the port ------------------------------------------------------------------------------

    async def find_by_email(self, email: str) -> RemoteUser | None:
        self._raise_before(self._next_fault("find_by_email", email))
        return next((u for u in self.users.values() if u.email == email), None)

    async def get(self, remote_id: str) -> RemoteUser:
        self._raise_before(self._next_fault("get", remote_id))
        try:
            return self.users[remote_id]
        except KeyError:
            raise RemoteNotFound(f"fake IdP: no user {remote_id}") from None

    async def create(self, user: NewRemoteUser) -> RemoteUser:
        fault = self._next_fault("create", user.email)
        if fault is not Fault.GHOST:
            self._raise_before(fault)
        async with self._lock:
            remote_id = self.remote_id_for(user.user_id)
            if remote_id in self.users or await self._email_taken(user.email):
                raise RemoteConflict(f"fake IdP: {user.email} exists")
            if user.password is not None and len(user.password) < 8:
                raise RemoteRejected("fake IdP: password too weak")
            created = RemoteUser(remote_id, user.email, user.full_name, str(user.user_id))
            self.users[remote_id] = created
        if fault is Fault.GHOST:
            raise OutcomeUnknown("fake IdP: the create was applied but its answer was lost")
        return created

    async def _email_taken(self, email: str) -> bool:
        return any(u.email == email for u in self.users.values())

    async def update(
        self,
        remote_id: str,
        *,
        email: str | None = None,
        full_name: str | None = None,
        password: str | None = None,
    ) -> RemoteUser:
        fault = self._next_fault("update", remote_id)
        if fault is not Fault.GHOST:
            self._raise_before(fault)
        if remote_id not in self.users:
            raise RemoteNotFound(f"fake IdP: no user {remote_id}")
        if password is not None and len(password) < 8:
            raise RemoteRejected("fake IdP: password too weak")
        current = self.users[remote_id]
        if email is not None and any(
            u.email == email and u.remote_id != remote_id for u in self.users.values()
        ):
            raise RemoteConflict(f"fake IdP: {email} exists")
        updated = replace(
            current, email=email or current.email, full_name=full_name or current.full_name
        )
        self.users[remote_id] = updated
        if fault is Fault.GHOST:
            raise OutcomeUnknown("fake IdP: the update was applied but its answer was lost")
        return updated

    async def set_enabled(self, remote_id: str, enabled: bool) -> RemoteUser:
        fault = self._next_fault("set_enabled", remote_id)
        if fault is not Fault.GHOST:
            self._raise_before(fault)
        if remote_id not in self.users:
            raise RemoteNotFound(f"fake IdP: no user {remote_id}")
        updated = replace(self.users[remote_id], enabled=enabled)
        self.users[remote_id] = updated
        if fault is Fault.GHOST:
            raise OutcomeUnknown("fake IdP: the change was applied but its answer was lost")
        return updated

    async def delete(self, remote_id: str) -> None:
        fault = self._next_fault("delete", remote_id)
        if fault is not Fault.GHOST:
            self._raise_before(fault)
        self.users.pop(remote_id, None)
        if fault is Fault.GHOST:
            raise OutcomeUnknown("fake IdP: the delete was applied but its answer was lost")

    async def iter_users(self, *, page_size: int = 100) -> AsyncIterator[RemoteUser]:
        ids = sorted(self.users)
        for start in range(0, len(ids), page_size):
            self._raise_before(self._next_fault("iter_users", str(start)))
            for remote_id in ids[start : start + page_size]:
                if remote_id in self.users:
                    yield self.users[remote_id]

    async def check(self) -> None:
        self._raise_before(self._next_fault("check", ""))

    async def aclose(self) -> None:
        return None
