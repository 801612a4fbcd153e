"""Failures at every step of the IdP conversation: a retry with the same key finishes the same
operation, with no duplicate anywhere; a rejection leaves no trace (G7)."""

from __future__ import annotations

from uuid import UUID

import pytest
from sqlalchemy import text

from accord.bootstrap import Accord
from accord.domain import errors
from accord.domain.model import CredentialMode, OperationKind
from accord.services.operations import CLAIM_ATTEMPTS
from accord.services.provisioning import NewUser, create_user
from accord.testing import FakeIdentityProvider, Fault
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees


def ada(org_id: UUID, **changes) -> NewUser:
    values = {"email": "ada@example.com", "full_name": "Ada Lovelace", "organization_id": org_id}
    return NewUser(**{**values, **changes})


SCRIPT_STEPS = [
    ("find_by_email", Fault.UNAVAILABLE),
    ("find_by_email", Fault.RATE_LIMITED),
    ("create", Fault.UNAVAILABLE),
    ("create", Fault.RATE_LIMITED),
    ("create", Fault.TIMEOUT),
    ("update", Fault.UNAVAILABLE),  # setting the credential after the create
    ("update", Fault.GHOST),
    ("create", Fault.GHOST),  # resolved at once: the lookup after the lost answer finds it
]


@pytest.mark.parametrize(("method", "fault"), SCRIPT_STEPS)
async def test_retry_with_the_same_key_completes_after_a_failure_at_each_step(
    accord_fake: Accord, fake_idp: FakeIdentityProvider, method: str, fault: Fault
) -> None:
    org = await new_org(accord_fake)
    fake_idp.script(method, fault)
    request = ada(org, credential=CredentialMode.TEMP_PASSWORD)
    try:
        outcome = await create_user(accord_fake, request, caller=PLATFORM, idempotency_key="k")
        assert (method, fault) == ("create", Fault.GHOST), "only a ghost create resolves inline"
    except errors.OperationPending as pending:
        assert await scalar(accord_fake, "SELECT state FROM operations") == "open"
        outcome = await create_user(accord_fake, request, caller=PLATFORM, idempotency_key="k")
        assert pending.operation_id == outcome["operation_id"]
    assert outcome["user"]["status"] == "pending"
    assert outcome["reused_identity"] is False  # a ghost of this very operation is its own
    assert len(fake_idp.users) == 1
    assert await scalar(accord_fake, "SELECT count(*) FROM users") == 1
    assert await scalar(accord_fake, "SELECT count(*) FROM operations") == 1
    assert await scalar(accord_fake, "SELECT created_by_accord FROM idp_links") is True
    # A further retry replays the stored result without touching the IdP.
    calls = len(fake_idp.calls)
    assert await create_user(accord_fake, request, caller=PLATFORM, idempotency_key="k") == outcome
    assert len(fake_idp.calls) == calls
    await assert_guarantees(accord_fake)


async def test_the_same_operation_resumes_from_its_record_alone(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    from accord.services import operations

    org = await new_org(accord_fake)
    fake_idp.script("update", Fault.GHOST)  # the credential was set, its answer lost
    with pytest.raises(errors.OperationPending) as pending:
        await create_user(
            accord_fake, ada(org, credential=CredentialMode.TEMP_PASSWORD), caller=PLATFORM
        )
    # No key: the worker's path. Resume it by id, as a worker would after a crash.
    result = await operations.resume(accord_fake, UUID(pending.value.operation_id))
    assert result is not None and result["user"]["status"] == "pending"
    assert len(fake_idp.users) == 1
    await assert_guarantees(accord_fake)


async def test_a_rejection_before_create_leaves_only_the_operation_and_audit(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    org = await new_org(accord_fake)
    fake_idp.script("create", Fault.REJECTED)
    with pytest.raises(errors.RemoteRejected):
        await create_user(accord_fake, ada(org), caller=PLATFORM)
    await _assert_no_trace(accord_fake, fake_idp)
    # A later attempt with the same e-mail succeeds.
    assert (await create_user(accord_fake, ada(org), caller=PLATFORM))["user"][
        "status"
    ] == "pending"
    await assert_guarantees(accord_fake)


async def test_a_rejection_after_create_deletes_the_idp_user_it_created(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    org = await new_org(accord_fake)
    fake_idp.script("update", Fault.REJECTED)  # the credential is refused after the create
    with pytest.raises(errors.RemoteRejected):
        await create_user(
            accord_fake,
            ada(org, credential=CredentialMode.TEMP_PASSWORD),
            caller=PLATFORM,
            idempotency_key="k",
        )
    await _assert_no_trace(accord_fake, fake_idp)
    assert [c[0] for c in fake_idp.calls].count("delete") == 1
    # The same key replays the failure; a new request succeeds.
    with pytest.raises(errors.RemoteRejected):
        await create_user(
            accord_fake,
            ada(org, credential=CredentialMode.TEMP_PASSWORD),
            caller=PLATFORM,
            idempotency_key="k",
        )
    assert (
        await create_user(
            accord_fake, ada(org, credential=CredentialMode.TEMP_PASSWORD), caller=PLATFORM
        )
    )["reused_identity"] is False


async def test_compensation_never_deletes_an_adopted_identity(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    from uuid import uuid4

    from accord.domain.ports import NewRemoteUser

    org = await new_org(accord_fake)
    existing = await fake_idp.create(NewRemoteUser(uuid4(), "ada@example.com", "Ada", None))
    fake_idp.script("update", Fault.REJECTED)
    with pytest.raises(errors.RemoteRejected):  # linked on request, with a credential reset
        adopt = ada(org, adopt_existing=True, credential=CredentialMode.INVITE)
        await create_user(accord_fake, adopt, caller=PLATFORM)
    assert existing.remote_id in fake_idp.users  # someone else's identity survives
    assert await scalar(accord_fake, "SELECT count(*) FROM users") == 0


async def test_a_deleted_idp_user_during_compensation_retry_is_postponed(
    accord_fake: Accord, fake_idp: FakeIdentityProvider
) -> None:
    org = await new_org(accord_fake)
    fake_idp.script("update", Fault.REJECTED)
    fake_idp.script("delete", Fault.UNAVAILABLE)  # compensation cannot reach the IdP yet
    with pytest.raises(errors.OperationPending):
        await create_user(
            accord_fake,
            ada(org, credential=CredentialMode.TEMP_PASSWORD),
            caller=PLATFORM,
            idempotency_key="k",
        )
    assert await scalar(accord_fake, "SELECT recovery_point FROM operations") == "compensating"
    with pytest.raises(errors.RemoteRejected):
        await create_user(
            accord_fake,
            ada(org, credential=CredentialMode.TEMP_PASSWORD),
            caller=PLATFORM,
            idempotency_key="k",
        )
    await _assert_no_trace(accord_fake, fake_idp)


async def _assert_no_trace(app: Accord, fake_idp: FakeIdentityProvider) -> None:
    assert fake_idp.users == {}
    async with app.db.transaction() as conn:
        counts = {
            table: (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar()
            for table in ("users", "memberships", "idp_links", "outbox", "one_time_tokens")
        }
        states = (await conn.execute(text("SELECT state FROM operations"))).scalars().all()
        actions = (await conn.execute(text("SELECT action FROM audit_events"))).scalars().all()
    assert counts == dict.fromkeys(counts, 0)
    assert set(states) == {"failed"}
    assert "create_user.compensated" in actions


@pytest.mark.parametrize(
    ("failures", "answered_503"),
    [
        ([errors.StorageUnavailable()], True),  # a lost connection: not run again
        ([errors.TransactionConflict()] * (CLAIM_ATTEMPTS - 1), False),
        ([errors.TransactionConflict()] * CLAIM_ATTEMPTS, True),
    ],
    ids=["lost-connection", "collisions-then-through", "collisions-every-time"],
)
async def test_a_database_failure_in_the_claim_is_not_the_keys_answer(
    accord_fake: Accord,
    monkeypatch: pytest.MonkeyPatch,
    failures: list[errors.AccordError],
    answered_503: bool,
) -> None:
    """A claim PostgreSQL rolled back whole for colliding with another transaction (a
    deadlock, a serialization failure) runs again, up to ``CLAIM_ATTEMPTS`` times. Any other
    database failure, or the last collision, answers 503 "retry later", and the retry with
    the same key runs the operation: the 503 is not the key's answer."""
    org = await new_org(accord_fake)
    flow = accord_fake.flow(OperationKind.CREATE_USER)
    claim = flow.claim
    left = iter(failures)

    async def failing(*args, **kwargs):
        failure = next(left, None)
        if failure is not None:
            raise failure
        return await claim(*args, **kwargs)

    monkeypatch.setattr(flow, "claim", failing)
    if answered_503:
        with pytest.raises(errors.StorageUnavailable):
            await create_user(accord_fake, ada(org), caller=PLATFORM, idempotency_key="k")
    outcome = await create_user(accord_fake, ada(org), caller=PLATFORM, idempotency_key="k")
    assert outcome["user"]["email"] == "ada@example.com"
    await assert_guarantees(accord_fake)
