"""Ports: what the services need from the outside world, stated with their error contracts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable
from uuid import UUID


@dataclass(frozen=True)
class RemoteUser:
    """A user as the identity provider holds it."""

    remote_id: str
    email: str
    full_name: str | None = None
    # accord's user id, where the provider keeps it (caller-chosen id or app metadata).
    accord_user_id: str | None = None
    # False while the provider refuses the user's sign-in (Auth0 ``blocked``, Keycloak
    # ``enabled: false``, Supabase ``banned_until``, local: disabled).
    enabled: bool = True


@dataclass(frozen=True)
class NewRemoteUser:
    """What accord asks the identity provider to create."""

    user_id: UUID
    email: str
    full_name: str
    password: str | None = field(default=None, repr=False)  # None: no usable password yet


@runtime_checkable
class IdentityProvider(Protocol):
    """An identity provider (IdP), seen through one small interface.

    Error contract, which decides the engine's retry policy:

    - ``ProviderUnavailable`` (timeout, 5xx, 429): transient, retry later. Its subclass
      ``OutcomeUnknown`` is raised when a write may have been applied; the engine resolves it by
      looking up, never by writing blindly again.
    - ``RemoteConflict``: the e-mail or id exists already; look it up and adopt it.
    - ``RemoteNotFound``: no such user.
    - ``RemoteRejected``: the request itself is refused (e.g. a weak password); do not retry.
    - ``ProviderMisconfigured``: credentials, URL or permissions are wrong; stop and tell a person.
    """

    name: str

    async def find_by_email(self, email: str) -> RemoteUser | None:
        """The user whose e-mail equals ``email`` (normalized) exactly, if any."""
        ...

    async def get(self, remote_id: str) -> RemoteUser:
        """The user with this id; RemoteNotFound if there is none."""
        ...

    async def create(self, user: NewRemoteUser) -> RemoteUser:
        """Create the user; RemoteConflict if the e-mail or id is taken."""
        ...

    async def update(
        self,
        remote_id: str,
        *,
        email: str | None = None,
        full_name: str | None = None,
        password: str | None = None,
    ) -> RemoteUser:
        """Change the given fields; RemoteNotFound if the user is gone."""
        ...

    async def delete(self, remote_id: str) -> None:
        """Delete the user. Idempotent: a missing user is not an error."""
        ...

    async def set_enabled(self, remote_id: str, enabled: bool) -> RemoteUser:
        """Allow (True) or refuse (False) the user's sign-in; idempotent; RemoteNotFound if
        the user is gone. Refusing also ends the user's sessions where the provider keeps
        them."""
        ...

    def iter_users(self, *, page_size: int = 100) -> AsyncIterator[RemoteUser]:
        """Every user, page by page, in bounded memory. A listing that cannot be completed
        raises (ProviderUnavailable) before it ends, never stops early: a caller acts on what
        is missing only once the iteration is exhausted."""
        ...

    async def check(self) -> None:
        """Prove reachability and credentials (ProviderMisconfigured, ProviderUnavailable)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class CreatesMany(Protocol):
    """An IdP with a bulk create (the local IdP: one statement). Without it, imports create
    identities one request at a time. Vendor bulk APIs (Auth0 user-import jobs, Keycloak
    partial import) are not behind this port yet."""

    async def existing(self, emails: Sequence[str]) -> set[str]:
        """Those of ``emails`` that have an identity (of anyone's making)."""
        ...

    async def find_many(self, emails: Sequence[str]) -> list[RemoteUser]:
        """The identities of those of ``emails`` that have one (``find_by_email`` for many)."""
        ...

    async def create_many(self, users: Sequence[NewRemoteUser]) -> list[RemoteUser]:
        """Create every user whose e-mail and id are free, without passwords, at once; the
        users created. One left out met a conflict (RemoteConflict for one create): its
        caller looks it up the per-row way. Any ProviderError (ProviderUnavailable, or one
        the whole call met): nothing is known, some identities may have been made."""
        ...


@runtime_checkable
class KeepsTemporaryPasswords(Protocol):
    """An IdP that can store a generated password as such (the local IdP: SHA-256, expiring)."""

    async def set_temporary_password(
        self, remote_id: str, password: str, expires_at: datetime
    ) -> None: ...


@runtime_checkable
class RevokesPasswords(Protocol):
    """An IdP that can leave an identity with no password at all (the local IdP), so that an
    invitation resets a credential without hashing a random one."""

    async def revoke_password(self, remote_id: str) -> None:
        """Remove the identity's password; RemoteNotFound if the identity is gone."""
        ...


@runtime_checkable
class VerifiesPasswords(Protocol):
    """An IdP that accord signs people in to itself (the local IdP)."""

    async def verify_password(self, email: str, password: str) -> tuple[RemoteUser, bool] | None:
        """The identity and whether the password is a temporary one; None if it is wrong."""
        ...

    async def replace_temporary_password(
        self, email: str, temporary: str, new_password: str
    ) -> RemoteUser | None:
        """Swap a temporary password for a chosen one in one atomic step: of concurrent callers
        with the same temporary password exactly one succeeds. None if the temporary password
        is wrong, expired or already replaced; ``RemoteRejected`` if the new one breaks the
        password policy (the temporary one then still works)."""
        ...


@runtime_checkable
class ChecksSessions(Protocol):
    """An IdP whose sessions accord issues and checks itself (the local IdP): suspending an
    identity ends them."""

    async def session_allowed(self, remote_id: str, issued_at: datetime) -> bool:
        """Whether a session issued at ``issued_at`` still holds (identity there, enabled, its
        sessions not revoked since)."""
        ...


class Sealer(Protocol):
    """Authenticated encryption and keyed digests with the server key (G9).

    ``open`` raises ``ConfigurationError`` when the document was sealed with another key.
    """

    def fingerprint(self, document: dict[str, Any]) -> str:
        """A keyed digest: equal for equal documents, useless to someone guessing contents."""
        ...

    def matches(self, fingerprint: str, document: dict[str, Any]) -> bool:
        """Whether ``fingerprint`` is ``document``'s; ``ConfigurationError`` when it was made
        with another key."""
        ...

    def seal(self, document: dict[str, Any]) -> bytes: ...

    def open(self, sealed: bytes) -> dict[str, Any]: ...

    def derived_key(self, purpose: str) -> bytes:
        """An independent 32-byte key for one purpose (e.g. signing login tokens)."""
        ...


class MailSession(Protocol):
    """Several messages over one connection to the mail server (one delivery pass)."""

    async def send(self, recipient: str, subject: str, body: str) -> None:
        """Send one message; any exception means "this one not sent, try again later" and
        leaves the session usable for the next message."""
        ...


class Mailer(Protocol):
    """Sends mail; any exception from a send means "not sent, try again later"."""

    async def send(self, recipient: str, subject: str, body: str) -> None:
        """One message in a session of its own."""
        ...

    def session(self) -> AbstractAsyncContextManager[MailSession]:
        """A session for a batch: it connects at its first send (a pass with nothing to
        send connects to nothing), and hangs up when the block ends."""
        ...


class Clock(Protocol):
    """The time, as the services see it (tests fix it)."""

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class Throttle(Protocol):
    """Counters of attempts in moving windows, shared by every process that uses one database.

    A ``rule`` is one or more limits in the ``limits`` library's notation, separated by ``;``:
    ``"5/minute;20/hour"``. Each method raises ``StorageUnavailable`` when the counters cannot
    be reached.
    """

    async def hit(self, key: str, rule: str) -> float | None:
        """Count one attempt for ``key``; None if it is within every limit of ``rule``, else
        the seconds until one would be (the attempt is then not counted by the full limit)."""
        ...

    async def blocked(self, key: str, rule: str) -> float | None:
        """Without counting: the seconds to wait if ``key`` has used up a limit of ``rule``."""
        ...

    async def reset(self, key: str, rule: str) -> None:
        """Forget every attempt counted for ``key`` under ``rule``."""
        ...

    async def sweep(self, *, limit: int) -> int:
        """Delete up to ``limit`` entries whose windows have passed; return how many."""
        ...


class WorkSignal(Protocol):
    """Tells a waiting worker that work may have become due: an operation left for it, mail
    queued, feed events written (by any process on the database, delivered at their commit).

    A hint, never a promise: a notice may be lost (the listening connection dropped, the
    process started after it was sent), so a worker still polls; a notice may find nothing due
    (another worker took it). Never raises: an unreachable database means waiting the time
    out, and the worker's own pass reports the outage.
    """

    async def wait(self, within: float) -> bool:
        """Return at the first notice since the previous ``wait`` returned (True, at once if
        one came meanwhile), or after ``within`` seconds (False)."""
        ...

    async def aclose(self) -> None:
        """Stop listening."""
        ...
