"""Finding "an invitation costs an argon2id hash" (issue 12): every invite create hashed a random
token with argon2id (~200 ms of CPU), a password nobody will ever type. Now an invited identity
of the local IdP has no password at all, and an invitation that resets an existing identity
removes the password it had: that password no longer signs in, and no argon2id hash is made."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest

from accord.adapters.idp import local
from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.model import CredentialMode
from accord.domain.ports import NewRemoteUser
from accord.services import credentials
from accord.services.provisioning import NewUser, create_user
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees

OLD_PASSWORD = "my own good password"


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The passwords the local IdP hashes with argon2id while the test runs."""
    hashed: list[str] = []
    real = local._hash

    async def counting(password: str) -> str:
        hashed.append(password)
        return await real(password)

    monkeypatch.setattr(local, "_hash", counting)
    yield hashed


async def credentials_of(accord: Accord, email: str) -> list[str]:
    found = await scalar(
        accord,
        "SELECT coalesce(array_agg(c.secret_hash), '{}') FROM local_credentials c "
        "JOIN local_identities i ON i.id = c.identity_id WHERE i.email = :e",
        e=email,
    )
    return list(found)


async def test_an_invited_identity_has_no_password_and_costs_no_hash(
    accord: Accord, hashes: list[str]
) -> None:
    org = await new_org(accord)
    made = await create_user(accord, NewUser("ada@example.com", "Ada", org), caller=PLATFORM)
    assert made["credential"] == "invite" and made["user"]["status"] == "pending"
    assert await credentials_of(accord, "ada@example.com") == []  # nothing argon2 could verify
    assert hashes == []
    with pytest.raises(errors.InvalidCredentials):
        await credentials.verify_password(accord, "ada@example.com", "")
    # The invitation's link still sets a password, which then signs in.
    token, _ = await credentials.issue_password_setup(accord, UUID(made["user"]["id"]))
    await credentials.complete_password_setup(accord, token, OLD_PASSWORD)
    assert await credentials.verify_password(accord, "ada@example.com", OLD_PASSWORD)
    await assert_guarantees(accord)


async def test_an_invitation_for_accords_own_identity_revokes_its_old_password(
    accord: Accord, hashes: list[str]
) -> None:
    org = await new_org(accord)
    first = await create_user(accord, NewUser("ada@example.com", "Ada", org), caller=PLATFORM)
    token, _ = await credentials.issue_password_setup(accord, UUID(first["user"]["id"]))
    await credentials.complete_password_setup(accord, token, OLD_PASSWORD)
    assert await accord.idp.verify_password("ada@example.com", OLD_PASSWORD)
    # The row is lost (older code, a restore), its unsent invitation with it; the identity stays.
    await scalar(accord, "DELETE FROM outbox RETURNING 1")
    await scalar(accord, "DELETE FROM users WHERE email = 'ada@example.com' RETURNING 1")
    hashes.clear()

    again = await create_user(accord, NewUser("ada@example.com", "Ada", org), caller=PLATFORM)
    assert again["reused_identity"] is True and again["credential"] == "invite"
    assert await accord.idp.verify_password("ada@example.com", OLD_PASSWORD) is None
    assert await credentials_of(accord, "ada@example.com") == []
    assert hashes == []
    await assert_guarantees(accord)


async def test_adopting_a_foreign_identity_with_an_invitation_revokes_its_password(
    accord: Accord, hashes: list[str]
) -> None:
    org = await new_org(accord)
    await accord.idp.create(NewRemoteUser(uuid4(), "staff@example.com", "Staff", OLD_PASSWORD))
    assert await accord.idp.verify_password("staff@example.com", OLD_PASSWORD)
    hashes.clear()

    adopted = await create_user(
        accord,
        NewUser(
            "staff@example.com",
            "Staff",
            org,
            adopt_existing=True,
            credential=CredentialMode.INVITE,
        ),
        caller=PLATFORM,
    )
    assert adopted["reused_identity"] is True and adopted["credential"] == "invite"
    assert await accord.idp.verify_password("staff@example.com", OLD_PASSWORD) is None
    assert await credentials_of(accord, "staff@example.com") == []
    assert hashes == []
    reset = await scalar(
        accord, "SELECT count(*) FROM audit_events WHERE action = 'user.credential_reset'"
    )
    assert reset == 1
    await assert_guarantees(accord)
