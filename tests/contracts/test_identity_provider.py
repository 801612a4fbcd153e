"""The IdentityProvider contract: every provider behaves the same through the port."""

from __future__ import annotations

import uuid

import pytest

from accord.domain.errors import (
    OutcomeUnknown,
    ProviderUnavailable,
    RemoteConflict,
    RemoteNotFound,
    RemoteRejected,
)
from accord.domain.ports import NewRemoteUser
from tests.contracts.conftest import Harness


def new_user(email: str, password: str | None = "correct horse battery") -> NewRemoteUser:
    return NewRemoteUser(
        user_id=uuid.uuid4(), email=email, full_name="Ada Lovelace", password=password
    )


async def settle(h: Harness) -> None:
    if h.settle:
        await h.settle()


async def test_create_then_get_and_find(harness: Harness) -> None:
    idp = harness.provider
    created = await idp.create(new_user("ada@example.com"))
    assert created.email == "ada@example.com"
    assert (await idp.get(created.remote_id)).email == "ada@example.com"
    await settle(harness)
    found = await idp.find_by_email("ada@example.com")
    assert found is not None and found.remote_id == created.remote_id


async def test_find_is_exact(harness: Harness) -> None:
    idp = harness.provider
    await idp.create(new_user("ada@example.com"))
    await idp.create(new_user("ada.lovelace@example.com"))
    await settle(harness)
    assert await idp.find_by_email("da@example.com") is None  # no substring match
    assert await idp.find_by_email("ada@example.co") is None
    assert (await idp.find_by_email("ada@example.com")).email == "ada@example.com"


# Providers whose lookup is exact on the stored spelling, case included. The port asks for a
# normalized query, so accord itself never sends upper case; but this test's promise (the
# providers agree whatever the case of the query) holds for Keycloak and Supabase only.
CASE_SENSITIVE_LOOKUP = {"local", "fake", "auth0"}


async def test_find_with_an_uppercase_query_finds_the_normalized_user(
    harness: Harness, request: pytest.FixtureRequest
) -> None:
    # accord stores and queries normalized (lower-case) e-mails; the provider must match them
    # even if it has its own case rules.
    if harness.provider.name in CASE_SENSITIVE_LOOKUP:
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                raises=AssertionError,
                reason=f"{harness.provider.name}'s find_by_email is case-sensitive",
            )
        )
    idp = harness.provider
    created = await idp.create(new_user("grace@example.com"))
    await settle(harness)
    for query in ("GRACE@EXAMPLE.COM", "Grace@Example.com"):
        found = await idp.find_by_email(query)
        assert found is not None, query
        assert (found.remote_id, found.email) == (created.remote_id, "grace@example.com")
    assert await idp.find_by_email("NOBODY@EXAMPLE.COM") is None


async def test_second_create_with_same_email_conflicts(harness: Harness) -> None:
    idp = harness.provider
    first = await idp.create(new_user("ada@example.com"))
    with pytest.raises(RemoteConflict):
        await idp.create(new_user("ada@example.com"))
    await settle(harness)
    # Adopt on conflict: the lookup finds the one that exists.
    assert (await idp.find_by_email("ada@example.com")).remote_id == first.remote_id


async def test_retried_create_with_same_user_id_conflicts(harness: Harness) -> None:
    idp = harness.provider
    user = new_user("ada@example.com")
    await idp.create(user)
    with pytest.raises(RemoteConflict):
        await idp.create(user)


async def test_update_changes_name_email_and_password(harness: Harness) -> None:
    idp = harness.provider
    created = await idp.create(new_user("ada@example.com"))
    updated = await idp.update(
        created.remote_id,
        email="ada.l@example.com",
        full_name="Ada L.",
        password="another good one",
    )
    assert updated.email == "ada.l@example.com"
    assert (await idp.get(created.remote_id)).full_name == "Ada L."


async def test_update_of_missing_user_is_not_found(harness: Harness) -> None:
    idp = harness.provider
    created = await idp.create(new_user("ada@example.com"))
    await idp.delete(created.remote_id)
    with pytest.raises(RemoteNotFound):
        await idp.update(created.remote_id, full_name="x")


async def test_weak_password_is_rejected(harness: Harness) -> None:
    with pytest.raises(RemoteRejected):
        await harness.provider.create(new_user("ada@example.com", password="abc"))


async def test_delete_is_idempotent(harness: Harness) -> None:
    idp = harness.provider
    created = await idp.create(new_user("ada@example.com"))
    await idp.delete(created.remote_id)
    await idp.delete(created.remote_id)  # a missing user is not an error
    with pytest.raises(RemoteNotFound):
        await idp.get(created.remote_id)


async def test_lists_every_user_across_pages(harness: Harness) -> None:
    idp = harness.provider
    emails = {f"user{i:04d}@example.com" for i in range(2500)}
    await _create_many(harness, sorted(emails))
    seen = [u.email async for u in idp.iter_users(page_size=100)]
    assert len(seen) == len(emails)
    assert set(seen) == emails


async def _create_many(harness: Harness, emails: list[str]) -> None:
    seed = getattr(harness, "seed_users", None)
    if seed is not None:
        await seed(emails)
        return
    for email in emails:
        await harness.provider.create(new_user(email, password=None))


@pytest.mark.parametrize("fault", ["unavailable", "rate_limited"])
async def test_transient_faults_are_unavailable(faulty_harness: Harness, fault: str) -> None:
    harness = faulty_harness
    await harness.inject(fault, "create")
    with pytest.raises(ProviderUnavailable) as caught:
        await harness.provider.create(new_user("ada@example.com"))
    assert not isinstance(caught.value, OutcomeUnknown)  # nothing was applied, and it says so
    if fault == "rate_limited":
        assert caught.value.retry_after is not None and caught.value.retry_after > 0
    # Nothing was stored: the retry creates the user.
    assert (await harness.provider.create(new_user("ada@example.com"))).email == "ada@example.com"


async def test_ghost_create_is_outcome_unknown_and_the_user_exists(faulty_harness: Harness) -> None:
    harness = faulty_harness
    await harness.inject("ghost", "create")
    with pytest.raises(OutcomeUnknown):
        await harness.provider.create(new_user("ada@example.com"))
    await settle(harness)
    found = await harness.provider.find_by_email("ada@example.com")
    assert found is not None and found.accord_user_id is not None


@pytest.mark.parametrize("method", ["find_by_email", "get", "delete"])
async def test_reads_and_deletes_fail_as_unavailable(faulty_harness: Harness, method: str) -> None:
    harness = faulty_harness
    created = await harness.provider.create(new_user("ada@example.com"))
    await harness.inject("unavailable", method)
    call = {
        "find_by_email": lambda: harness.provider.find_by_email("ada@example.com"),
        "get": lambda: harness.provider.get(created.remote_id),
        "delete": lambda: harness.provider.delete(created.remote_id),
    }[method]
    with pytest.raises(ProviderUnavailable):
        await call()


# -- suspension: set_enabled ---------------------------------------------------------------------


async def test_set_enabled_blocks_and_unblocks_and_every_read_says_so(harness: Harness) -> None:
    idp = harness.provider
    created = await idp.create(new_user("ada@example.com"))
    assert created.enabled and (await idp.get(created.remote_id)).enabled
    blocked = await idp.set_enabled(created.remote_id, False)
    assert (blocked.remote_id, blocked.enabled) == (created.remote_id, False)
    await settle(harness)
    assert not (await idp.get(created.remote_id)).enabled
    found = await idp.find_by_email("ada@example.com")
    assert found is not None and not found.enabled
    listed = {u.remote_id: u.enabled async for u in idp.iter_users(page_size=100)}
    assert listed[created.remote_id] is False
    assert (await idp.set_enabled(created.remote_id, True)).enabled
    await settle(harness)
    assert (await idp.get(created.remote_id)).enabled
    listed = {u.remote_id: u.enabled async for u in idp.iter_users(page_size=100)}
    assert listed[created.remote_id] is True


async def test_set_enabled_is_idempotent_and_keeps_the_rest(harness: Harness) -> None:
    idp = harness.provider
    created = await idp.create(new_user("ada@example.com"))
    await idp.set_enabled(created.remote_id, False)
    again = await idp.set_enabled(created.remote_id, False)
    assert not again.enabled
    kept = await idp.get(created.remote_id)
    assert (kept.email, kept.full_name) == ("ada@example.com", "Ada Lovelace")
    assert kept.accord_user_id == created.accord_user_id
    assert (await idp.set_enabled(created.remote_id, True)).enabled
    assert (await idp.set_enabled(created.remote_id, True)).enabled


async def test_set_enabled_of_a_missing_user_is_not_found(harness: Harness) -> None:
    idp = harness.provider
    created = await idp.create(new_user("ada@example.com"))
    await idp.delete(created.remote_id)
    with pytest.raises(RemoteNotFound):
        await idp.set_enabled(created.remote_id, False)


async def test_set_enabled_fails_as_unavailable_and_changes_nothing(
    faulty_harness: Harness,
) -> None:
    harness = faulty_harness
    created = await harness.provider.create(new_user("ada@example.com"))
    await harness.inject("unavailable", "set_enabled")
    with pytest.raises(ProviderUnavailable):
        await harness.provider.set_enabled(created.remote_id, False)
    assert (await harness.provider.get(created.remote_id)).enabled
