"""Whose IdP user a create finds, when the IdP says something accord did not write: a stamp
edited by hand is not accord's, and an identity already linked to another accord user is never
linked a second time (G2) nor deleted by the failed create (G3)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from accord.domain import errors
from accord.domain.model import OperationState
from accord.domain.ports import RemoteUser
from accord.services.provisioning import NewUser, create_user
from accord.services.registration import Registration, register
from accord.testing import FakeContext, fake_context
from tests.unit.test_engine import PLATFORM, create, new_org, tables


@pytest.fixture
def ctx() -> FakeContext:
    return fake_context()


async def test_an_identity_whose_stamp_was_edited_by_hand_is_not_taken_over(
    ctx: FakeContext,
) -> None:
    edited = RemoteUser("fake|edited", "pat@example.com", "Pat", accord_user_id="not-a-uuid")
    ctx.idp.users[edited.remote_id] = edited
    with pytest.raises(errors.EmailAlreadyExists):
        await register(ctx, Registration("pat@example.com", "a chosen passphrase", "Pat"))
    assert ctx.idp.users == {edited.remote_id: edited}  # neither adopted nor deleted
    assert tables(ctx).users == {}


async def test_an_identity_linked_to_another_user_is_not_linked_again(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    ada = await create(ctx, org, email="ada@example.com", key=None)
    (remote_id,) = ctx.idp.users
    # At the IdP, someone changed Ada's e-mail to Bob's.
    ctx.idp.users[remote_id] = replace(ctx.idp.users[remote_id], email="bob@example.com")
    bob = NewUser("bob@example.com", "Bob", org, adopt_existing=True)
    with pytest.raises(errors.RemoteConflict, match="accord reconcile"):
        await create_user(ctx, bob, caller=PLATFORM)
    assert only_operation_of(ctx, "bob@example.com").state == OperationState.FAILED
    assert list(ctx.idp.users) == [remote_id]  # Ada's identity is not deleted
    (link,) = tables(ctx).links.values()
    assert str(link.user_id) == ada["user"]["id"]
    assert [u.email for u in tables(ctx).users.values()] == ["ada@example.com"]


def only_operation_of(ctx: FakeContext, email: str):
    (op,) = [o for o in tables(ctx).operations.values() if o.request.get("email") == email]
    return op


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"full_name": "A" * 201}, "The full name is longer than"),
        ({"full_name": "   "}, "The full name is empty"),
        ({"permissions": tuple(f"p{i}" for i in range(201))}, "permissions of at most 100"),
        ({"permissions": ("x" * 101,)}, "permissions of at most 100"),
    ],
)
async def test_a_user_out_of_bounds_is_refused_and_not_made(
    ctx: FakeContext, changes: dict, says: str
) -> None:
    org = await new_org(ctx)
    request = replace(NewUser("ada@example.com", "Ada", org), **changes)
    with pytest.raises(errors.InvalidInput, match=says):
        await create_user(ctx, request, caller=PLATFORM)
    assert tables(ctx).users == {} and ctx.idp.users == {}
    assert not any(o.request.get("email") for o in tables(ctx).operations.values())
