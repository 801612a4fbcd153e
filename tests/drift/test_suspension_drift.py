"""reconcile against every identity provider: a user whose IdP block differs from the database
(suspended but enabled in the IdP, or not suspended but blocked) is reported, repaired toward
the database's status, and a second run finds nothing."""

from __future__ import annotations

import pytest

from accord.domain.drift import Action, DriftClass, OrphanRowPolicy, RowView, classify_row
from accord.services.reconcile import ReconcileOptions, reconcile
from accord.services.suspension import suspend_user
from tests.drift import scenes
from tests.drift.conftest import Planted, sql
from tests.engine.conftest import PLATFORM, new_org
from tests.guarantees import assert_guarantees


def found(report) -> dict[str, tuple[str, bool, bool]]:
    return {
        f.email: (f.action.value, f.ids["idp_enabled"], f.done)
        for f in report.findings[DriftClass.ENABLED_MISMATCHES]
    }


async def test_an_enabled_state_mismatch_is_reported_and_repaired_toward_the_database(
    planted: Planted,
) -> None:
    app = planted.app
    org = await new_org(app, max_users=10)
    await scenes.user(app, "healthy@example.com", org)
    loose = await scenes.user(app, "loose@example.com", org)  # suspended, IdP lets it in
    await suspend_user(app, loose["id"], caller=PLATFORM)
    await app.idp.set_enabled(loose["remote_id"], True)  # unblocked in the vendor's console
    blocked = await scenes.user(app, "blocked@example.com", org)  # active, IdP refuses it
    await app.idp.set_enabled(blocked["remote_id"], False)

    dry = await reconcile(app, ReconcileOptions())
    assert found(dry) == {
        "loose@example.com": ("block_idp_user", True, False),
        "blocked@example.com": ("unblock_idp_user", False, False),
    }
    assert dry.remaining == 2
    assert (await app.idp.get(loose["remote_id"])).enabled  # a dry run changes nothing

    fixed = await reconcile(app, ReconcileOptions(fix=True))
    assert {e: done for e, (_, _, done) in found(fixed).items()} == {
        "loose@example.com": True,
        "blocked@example.com": True,
    }
    assert (await app.idp.get(loose["remote_id"])).enabled is False
    assert (await app.idp.get(blocked["remote_id"])).enabled is True
    statuses = dict((await scenes.snapshot(app))["users"])
    assert statuses["loose@example.com"] == "suspended"  # the database is the truth
    assert statuses["blocked@example.com"] == "pending"
    audited = await sql(
        app,
        "SELECT count(*) FROM audit_events WHERE action IN "
        "('reconcile.idp_user_blocked', 'reconcile.idp_user_unblocked')",
    )
    assert audited == 2
    again = await reconcile(app, ReconcileOptions(fix=True))
    assert again.remaining == 0 and sum(again.found.values()) == 0
    await assert_guarantees(app)


async def test_a_running_suspension_is_left_to_its_operation(fake_app: Planted) -> None:
    app = fake_app.app
    org = await new_org(app)
    user = await scenes.user(app, "busy@example.com", org)
    await sql(app, "UPDATE users SET status = 'suspended' WHERE id = :u", u=user["id"])
    await sql(
        app,
        "INSERT INTO operations (id, kind, caller, request_digest, request, state, "
        "recovery_point, user_id, flow_state, deadline_at, lease_until) VALUES "
        "(gen_random_uuid(), 'suspend', 'test', 'x', '{}', 'open', 'claimed', :u, '{}', "
        "now() + interval '1 hour', now() + interval '1 hour')",
        u=user["id"],
    )
    report = await reconcile(app, ReconcileOptions(fix=True))
    assert found(report) == {}  # the operation blocks the identity itself
    assert (await app.idp.get(user["remote_id"])).enabled is True


def row(status: str, *, created_by_accord: bool = True) -> RowView:
    return RowView(
        user_id="u1",
        email="ada@example.com",
        status=status,
        link_remote_id="r1",
        link_email="ada@example.com",
        match_remote_id="r1",
        match_linked_to="u1",
        link_enabled=None,
        link_created_by_accord=created_by_accord,
    )


@pytest.mark.parametrize(
    ("status", "enabled", "created_by_accord", "action"),
    [
        ("active", True, True, None),
        ("suspended", False, True, None),
        ("pending", None, True, None),  # not known: judged healthy
        ("suspended", True, True, Action.BLOCK),
        ("suspended", True, False, Action.BLOCK),  # accord was asked to suspend it
        ("active", False, True, Action.UNBLOCK),
        ("active", False, False, None),  # another system's block of its own identity (G11)
    ],
)
def test_classification_of_enabled_states(
    status: str, enabled: bool | None, created_by_accord: bool, action: Action | None
) -> None:
    finding = classify_row(
        row(status, created_by_accord=created_by_accord),
        "ada@example.com",
        OrphanRowPolicy.REPORT,
        enabled,
    )
    assert (finding.action if finding else None) == action
    if finding is not None:
        assert finding.drift == DriftClass.ENABLED_MISMATCHES
