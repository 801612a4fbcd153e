"""G9 on doubles: how long the engine holds each sealed secret. A registrant's password until
the IdP has it (erased with the recovery point after the IdP call), a generated temporary
password while the caller or a replay by key may need it, and nothing during a compensation."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import CredentialMode, OperationState, RecoveryPoint
from accord.domain.records import OperationRecord
from accord.services import worker
from accord.services.organizations import NewOrganization, create_organization
from accord.services.provisioning import NewUser, create_user
from accord.services.registration import Registration, register
from accord.testing import FakeContext, Fault, SimulatedCrash, fake_context

PLATFORM = Caller.platform("token:platform", "admin@platform.test")
PASSWORD = "a chosen passphrase"


@pytest.fixture
def ctx() -> FakeContext:
    return fake_context()


def the_operation(ctx: FakeContext) -> OperationRecord:
    (op,) = ctx.store.tables.operations.values()
    return op


def sealed(ctx: FakeContext) -> dict[str, Any] | None:
    op = the_operation(ctx)
    return ctx.sealer.open(op.sealed_secrets) if op.sealed_secrets else None


async def _dies_in_finalize(conn: Any, user: Any) -> None:
    raise SimulatedCrash("the process died after the recovery point")


async def _fails(conn: Any, user: Any) -> None:
    raise RuntimeError("the application's table is missing")


async def new_org(ctx: FakeContext) -> UUID:
    org = await create_organization(ctx, NewOrganization(name="Acme"), caller=PLATFORM)
    return UUID(org["id"])


async def temporary_user(ctx: FakeContext, org: UUID, key: str | None) -> dict[str, Any]:
    person = NewUser("tom@example.com", "Tom", org, credential=CredentialMode.TEMP_PASSWORD)
    return await create_user(ctx, person, caller=PLATFORM, idempotency_key=key)


async def test_a_password_is_held_until_the_idp_has_it(ctx: FakeContext) -> None:
    ctx.idp.script("create", Fault.UNAVAILABLE)
    with pytest.raises(errors.OperationPending):
        await register(ctx, Registration("bob@example.com", PASSWORD, "Bob"), idempotency_key="k")
    assert sealed(ctx) == {"password": PASSWORD}  # the IdP does not have it yet: kept, sealed
    ctx.hooks.register(_dies_in_finalize)
    ctx.clock.advance(seconds=600)
    with pytest.raises(SimulatedCrash):
        await register(ctx, Registration("bob@example.com", PASSWORD, "Bob"), idempotency_key="k")
    op = the_operation(ctx)
    assert (op.state, op.recovery_point) == (OperationState.OPEN, RecoveryPoint.IDP_ENSURED)
    assert op.sealed_secrets is None  # erased with the recovery point, before finalize ran


async def test_a_temporary_password_outlives_its_operation_only_for_a_key(
    ctx: FakeContext,
) -> None:
    result = await temporary_user(ctx, await new_org(ctx), key=None)
    assert result["temporary_password"] and the_operation(ctx).sealed_secrets is None


async def test_a_keyed_temporary_password_replays_until_the_key_is_forgotten(
    ctx: FakeContext,
) -> None:
    org = await new_org(ctx)
    first = await temporary_user(ctx, org, key="tom")
    assert sealed(ctx) == {"temporary_password": first["temporary_password"]}
    assert await temporary_user(ctx, org, key="tom") == first
    ctx.clock.advance(hours=ctx.settings.idempotency_ttl_hours + 1)
    await worker.housekeeping(ctx, worker.Pass())
    assert ctx.store.tables.operations == {}  # the operation, its sealed secrets with it


async def test_a_compensation_holds_no_secret(ctx: FakeContext) -> None:
    ctx.hooks.register(_fails)
    ctx.idp.script("delete", Fault.UNAVAILABLE)  # the undo must wait for the IdP
    with pytest.raises(errors.OperationPending):
        await temporary_user(ctx, await new_org(ctx), key="tom")
    op = the_operation(ctx)
    assert op.recovery_point == RecoveryPoint.COMPENSATING and op.sealed_secrets is None
