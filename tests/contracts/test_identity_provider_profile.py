"""The port's ``update(email=..., full_name=...)`` on every provider: what an e-mail change
(services/profile.py) relies on (docs/idp/email-changes.md)."""

from __future__ import annotations

import pytest

from accord.domain.errors import RemoteConflict
from tests.contracts.conftest import Harness
from tests.contracts.test_identity_provider import new_user, settle


async def test_an_email_change_moves_the_lookup_and_keeps_the_name(harness: Harness) -> None:
    idp = harness.provider
    created = await idp.create(new_user("ada@example.com"))
    updated = await idp.update(created.remote_id, email="ada.king@example.com")
    assert (updated.remote_id, updated.email) == (created.remote_id, "ada.king@example.com")
    await settle(harness)
    found = await idp.find_by_email("ada.king@example.com")
    assert found is not None and found.remote_id == created.remote_id
    assert found.full_name == "Ada Lovelace"
    assert found.accord_user_id == created.accord_user_id  # accord's stamp survives
    assert await idp.find_by_email("ada@example.com") is None


async def test_a_name_change_keeps_the_email(harness: Harness) -> None:
    idp = harness.provider
    created = await idp.create(new_user("ada@example.com"))
    await idp.update(created.remote_id, full_name="Ada King")
    got = await idp.get(created.remote_id)
    assert (got.email, got.full_name) == ("ada@example.com", "Ada King")


async def test_changing_to_a_taken_email_is_a_conflict_and_changes_nothing(
    harness: Harness,
) -> None:
    idp = harness.provider
    await idp.create(new_user("ada@example.com"))
    grace = await idp.create(new_user("grace@example.com"))
    with pytest.raises(RemoteConflict):
        await idp.update(grace.remote_id, email="ada@example.com")
    assert (await idp.get(grace.remote_id)).email == "grace@example.com"


async def test_setting_the_same_email_twice_is_the_same_as_once(harness: Harness) -> None:
    idp = harness.provider  # a lost answer is resolved by sending the change again
    created = await idp.create(new_user("ada@example.com"))
    await idp.update(created.remote_id, email="new@example.com")
    again = await idp.update(created.remote_id, email="new@example.com")
    assert again.email == "new@example.com"
    back = await idp.update(created.remote_id, email="ada@example.com")  # a compensation
    assert back.email == "ada@example.com"
