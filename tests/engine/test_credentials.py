"""Set-password links and the local IdP's sign-in."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.model import CredentialMode
from accord.services import credentials
from accord.services.provisioning import NewUser, create_user
from tests.engine.conftest import PLATFORM, new_org, scalar


async def invited(accord: Accord, **changes) -> dict:
    org = await new_org(accord)
    request = NewUser("ada@example.com", "Ada", org, **changes)
    return await create_user(accord, request, caller=PLATFORM)


async def test_a_setup_link_sets_the_password_once(accord: Accord) -> None:
    user = (await invited(accord))["user"]
    token, expires_at = await credentials.issue_password_setup(accord, UUID(user["id"]))
    valid_for = expires_at - datetime.now(UTC)
    assert timedelta(hours=23, minutes=59) < valid_for <= timedelta(hours=24)
    stored = await scalar(accord, "SELECT array_agg(digest) FROM one_time_tokens")
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]  # its digest, and only that
    done = await credentials.complete_password_setup(accord, token, "my own good password")
    assert done["status"] == "active"
    signed_in = await credentials.verify_password(accord, "ADA@example.com", "my own good password")
    assert signed_in["id"] == user["id"]
    with pytest.raises(errors.TokenInvalid):
        await credentials.complete_password_setup(accord, token, "another good password")


async def test_an_expired_or_unknown_link_is_refused(accord: Accord) -> None:
    user = (await invited(accord))["user"]
    token, _ = await credentials.issue_password_setup(accord, UUID(user["id"]))
    await scalar(
        accord, "UPDATE one_time_tokens SET expires_at = now() - interval '1 second' RETURNING 1"
    )
    with pytest.raises(errors.TokenInvalid):
        await credentials.complete_password_setup(accord, token, "my own good password")
    with pytest.raises(errors.TokenInvalid):
        await credentials.complete_password_setup(accord, "made-up", "my own good password")


async def test_a_weak_password_is_refused_and_the_link_stays_usable(accord: Accord) -> None:
    user = (await invited(accord))["user"]
    token, _ = await credentials.issue_password_setup(accord, UUID(user["id"]))
    with pytest.raises(errors.PasswordRejected):
        await credentials.complete_password_setup(accord, token, "short")
    await credentials.complete_password_setup(accord, token, "long enough now")


async def test_a_temporary_password_must_be_replaced_before_sign_in(accord: Accord) -> None:
    result = await invited(accord, credential=CredentialMode.TEMP_PASSWORD)
    temporary = result["temporary_password"]
    stored = await scalar(accord, "SELECT secret_hash FROM local_credentials WHERE is_temporary")
    assert stored == "sha256$" + hashlib.sha256(temporary.encode()).hexdigest()
    with pytest.raises(errors.PasswordChangeRequired):
        await credentials.verify_password(accord, "ada@example.com", temporary)
    with pytest.raises(errors.InvalidCredentials):
        await credentials.replace_temporary_password(
            accord, "ada@example.com", "wrong", "new pass 1"
        )
    user = await credentials.replace_temporary_password(
        accord, "ada@example.com", temporary, "my chosen password"
    )
    assert (user["status"], user["require_password_change"]) == ("active", False)
    assert await credentials.verify_password(accord, "ada@example.com", "my chosen password")
    with pytest.raises(errors.InvalidCredentials):
        await credentials.verify_password(accord, "ada@example.com", temporary)


async def test_an_expired_temporary_password_no_longer_works(accord: Accord) -> None:
    result = await invited(accord, credential=CredentialMode.TEMP_PASSWORD)
    await scalar(
        accord, "UPDATE local_credentials SET expires_at = now() - interval '1 s' RETURNING 1"
    )
    with pytest.raises(errors.InvalidCredentials):
        await credentials.replace_temporary_password(
            accord, "ada@example.com", result["temporary_password"], "my chosen password"
        )


async def test_requesting_a_link_says_nothing_about_the_account(accord: Accord) -> None:
    await invited(accord)
    assert await credentials.request_password_setup(accord, "ada@example.com") is None
    assert await credentials.request_password_setup(accord, "nobody@example.com") is None
    assert await credentials.request_password_setup(accord, "not an email") is None
    kinds = await scalar(accord, "SELECT array_agg(kind ORDER BY id) FROM outbox")
    assert kinds == ["invitation", "password_setup"]
    await credentials.request_password_setup(accord, "ada@example.com")  # deduplicated
    assert await scalar(accord, "SELECT count(*) FROM outbox") == 2
