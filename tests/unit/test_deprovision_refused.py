"""A deprovisioning the IdP refuses fails, and what it undoes is nothing: the user stays
disabled (giving access back would be the worse failure) and the IdP user is left for
`accord reconcile` to report, or for the next user of the address to take over, its link moved
and its password replaced."""

from __future__ import annotations

import pytest

from accord.domain import errors
from accord.domain.model import OperationKind, OperationState, UserStatus
from accord.services.deprovisioning import deprovision_user
from accord.testing import FakeContext, Fault, fake_context
from tests.unit.test_engine import PLATFORM, create, new_org, tables


@pytest.fixture
def ctx() -> FakeContext:
    return fake_context()


async def test_a_refused_idp_delete_leaves_the_user_disabled(ctx: FakeContext) -> None:
    org = await new_org(ctx)
    user_id = (await create(ctx, org))["user"]["id"]
    ctx.idp.script("delete", Fault.REJECTED)
    with pytest.raises(errors.RemoteRejected):
        await deprovision_user(ctx, user_id, caller=PLATFORM)
    (op,) = [o for o in tables(ctx).operations.values() if o.kind == OperationKind.DEPROVISION]
    assert (op.state, op.error["code"]) == (OperationState.FAILED, "idp_rejected")
    (user,) = tables(ctx).users.values()
    assert user.status == UserStatus.DISABLED and user.email is None  # not given back
    assert len(ctx.idp.users) == 1 and len(tables(ctx).links) == 1  # for reconcile to report


async def test_the_address_given_to_a_new_user_takes_over_the_identity_left_behind(
    ctx: FakeContext,
) -> None:
    org = await new_org(ctx)
    old_id = (await create(ctx, org, key=None))["user"]["id"]
    ctx.idp.script("delete", Fault.REJECTED)
    with pytest.raises(errors.RemoteRejected):
        await deprovision_user(ctx, old_id, caller=PLATFORM)
    (left_behind,) = ctx.idp.users
    ctx.idp.calls.clear()
    made = await create(ctx, org, key=None)  # the same address, for a new person
    assert made["user"]["id"] != old_id
    assert list(ctx.idp.users) == [left_behind]  # accord's own identity, not a second one
    # The old person's password goes: the new person sets theirs through the invitation.
    assert ctx.idp.calls.count(("update", left_behind)) == 2  # its name, then its password
    (link,) = tables(ctx).links.values()  # moved from the retired row: one holder (G2)
    assert (str(link.user_id), link.remote_id) == (made["user"]["id"], left_behind)
