"""The audit trail's store contract, on PostgreSQL and in memory: what is recorded is read back
whole (principal and claim apart), filters match, and pages follow (at, id) without gaps."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from accord.domain.principals import Principal, PrincipalKind
from accord.domain.records import AuditEvent, AuditQuery
from accord.domain.store import Store
from tests.contracts.test_store import store  # noqa: F401 (the fixture, both stores)


async def test_an_event_reads_back_whole(store: Store) -> None:  # noqa: F811
    org, token, subject = uuid4(), uuid4(), uuid4()
    by = Principal.token(token, org)
    event = AuditEvent(
        actor=by.label,
        action="user.created",
        subject_user_id=subject,
        subject_email="zoë@example.com",
        organization_id=org,
        operation_id=uuid4(),
        data={"role": "org_user"},
        principal=by,
        claimed_actor="Zoë Ünal 山田",
    )
    async with store.transaction() as tx:
        await tx.audit.record(event)
        await tx.audit.record(AuditEvent(actor="cli:root", action="api_token.created"))
        found = await tx.audit.query(AuditQuery(organization_id=org))
        internal = await tx.audit.query(AuditQuery(action="api_token.created"))
    assert [e.event for e in found] == [event]
    assert found[0].event.by == Principal(PrincipalKind.TOKEN, token_id=token, scope=str(org))
    assert internal[0].event.by == Principal.system("cli:root")
    assert internal[0].event.claimed_actor is None


async def test_filters_match_and_pages_follow_at_then_id(store: Store) -> None:  # noqa: F811
    org, other, ada = uuid4(), uuid4(), uuid4()
    ada_signed_in = Principal.user(ada)
    async with store.transaction() as tx:
        for i in range(5):
            await tx.audit.record(AuditEvent("t", f"a.{i % 2}", organization_id=org))
        await tx.audit.record(AuditEvent("t", "a.0", organization_id=other))
        await tx.audit.record(AuditEvent("t", "b", subject_user_id=ada, organization_id=org))
        await tx.audit.record(AuditEvent(ada_signed_in.label, "c", principal=ada_signed_in))
    async with store.transaction() as tx:
        everything = await tx.audit.query(AuditQuery(organization_id=org, limit=100))
        assert len(everything) == 6
        keys = [(e.at, e.id) for e in everything]
        assert keys == sorted(keys)
        walked, after = [], None
        while True:
            page = await tx.audit.query(AuditQuery(organization_id=org, after=after, limit=2))
            walked += page
            if len(page) < 2:
                break
            after = (page[-1].at, page[-1].id)
        assert [e.id for e in walked] == [e.id for e in everything]
        zeros = await tx.audit.query(AuditQuery(organization_id=org, action="a.0"))
        assert len(zeros) == 3
        about_ada = await tx.audit.query(AuditQuery(user_id=ada))
        assert {e.event.action for e in about_ada} == {"b", "c"}
        first = everything[0].at
        assert len(await tx.audit.query(AuditQuery(organization_id=org, since=first))) == 6
        assert await tx.audit.query(AuditQuery(organization_id=org, until=first)) == []
        later = first + timedelta(days=1)
        assert await tx.audit.query(AuditQuery(organization_id=org, since=later)) == []
        assert await tx.audit.query(AuditQuery(organization_id=uuid4())) == []
        assert len(await tx.audit.query(AuditQuery(limit=100))) >= 8  # no filter at all


async def test_many_events_recorded_at_once_read_back_whole_and_in_order(
    store: Store,  # noqa: F811
) -> None:
    org, token = uuid4(), uuid4()
    by = Principal.token(token, org)
    events = [
        AuditEvent(
            actor=by.label,
            action="create_user.started",
            subject_user_id=uuid4(),
            subject_email=f"n{i}@example.com",
            organization_id=org,
            operation_id=uuid4(),
            data={"n": i, "nested": {"zoë": [1, None]}},
            principal=by,
            claimed_actor="Zoë" if i % 2 else None,
        )
        for i in range(5)
    ]
    async with store.transaction() as tx:
        await tx.audit.record_many(events)
        await tx.audit.record_many([])
        found = await tx.audit.query(AuditQuery(organization_id=org, limit=100))
    assert [e.event for e in found] == events
    assert [e.id for e in found] == sorted(e.id for e in found)
