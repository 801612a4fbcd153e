"""cleanup-orphans (seed 004's cleanup script, done safely) and orgs merge (seed 001's fix)."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest

from accord.domain import errors
from accord.domain.ports import NewRemoteUser
from accord.services.cleanup import cleanup_orphans
from accord.services.merge import merge_organizations
from accord.services.provisioning import NewUser, create_user
from accord.services.registration import Registration, register
from tests.drift import scenes
from tests.drift.conftest import Planted, sql
from tests.engine.conftest import PLATFORM, new_org
from tests.guarantees import assert_guarantees


def by_email(items: list[dict]) -> dict[str, str]:
    return {item["email"]: item["action"] for item in items}


async def test_cleanup_lists_then_removes_only_rows_without_a_working_identity(
    fake_app: Planted,
) -> None:
    app = fake_app.app
    org = await new_org(app)
    await scenes.user(app, "healthy@example.com", org)
    await scenes.never_finished_row(app, "halfway@example.com")
    legacy = await scenes.user(app, "legacy@example.com", org)  # "pending_" sub: never linked
    await sql(app, "DELETE FROM idp_links WHERE user_id = :u", u=legacy["id"])
    await app.idp.delete(legacy["remote_id"])
    kept = await scenes.never_finished_row(app, "has-identity@example.com")
    await app.idp.create(NewRemoteUser(kept, "has-identity@example.com", "Kept"))

    listed = await cleanup_orphans(app)
    assert by_email(listed) == {
        "halfway@example.com": "would_remove",
        "legacy@example.com": "would_remove",
        "has-identity@example.com": "kept",
    }
    assert await sql(app, "SELECT count(*) FROM users") == 4, "listing changes nothing"

    removed = await cleanup_orphans(app, remove=True, actor="ops@example.com")
    assert by_email(removed)["halfway@example.com"] == "removed"
    assert by_email(removed)["legacy@example.com"] == "removed"
    assert by_email(removed)["has-identity@example.com"] == "kept"
    emails = await sql(app, "SELECT array_agg(email ORDER BY email) FROM users")
    assert emails == ["has-identity@example.com", "healthy@example.com"]
    audit = await sql(app, "SELECT count(*) FROM audit_events WHERE action = 'user.orphan_removed'")
    assert audit == 2
    # The point of the cleanup: the same e-mail can be created again.
    await create_user(app, NewUser("halfway@example.com", "Half", org), caller=PLATFORM)


async def test_cleanup_of_one_email_and_never_of_a_running_operation(fake_app: Planted) -> None:
    app = fake_app.app
    org = await new_org(app)
    await scenes.never_finished_row(app, "one@example.com")
    await scenes.never_finished_row(app, "other@example.com")
    await scenes.stuck_operation(app, "running@example.com", org, past_deadline=False)

    only = await cleanup_orphans(app, email="ONE@example.com", remove=True)

    assert by_email(only) == {"one@example.com": "removed"}
    everything = by_email(await cleanup_orphans(app))
    assert everything == {"other@example.com": "would_remove"}  # not the operation's row


async def two_teams(planted: Planted) -> tuple[UUID, UUID]:
    app = planted.app
    source = await new_org(app, "Bob Org", max_users=5)
    target = await new_org(app, "Bob", max_users=3)
    shared = NewUser("both@example.com", "Both", target, role="org_admin", permissions=("b",))
    await create_user(app, shared, caller=PLATFORM)
    await create_user(app, NewUser("x@example.com", "X", source), caller=PLATFORM)
    await sql(
        app,
        "INSERT INTO memberships (user_id, organization_id, role, permissions) "
        "SELECT id, :o, 'org_user', '{a}' FROM users WHERE email = 'both@example.com'",
        o=source,
    )
    await sql(
        app,
        """UPDATE organizations SET settings = '{"sso": true, "theme": "red"}'
                      WHERE id = :o""",
        o=source,
    )
    await sql(
        app, """UPDATE organizations SET settings = '{"theme": "blue"}' WHERE id = :o""", o=target
    )
    return source, target


async def test_merge_shows_its_plan_then_moves_members_settings_in_one_go(
    fake_app: Planted,
) -> None:
    app = fake_app.app
    source, target = await two_teams(fake_app)
    before = await scenes.snapshot(app)

    plan = await merge_organizations(app, "bob-org", str(target), caller=PLATFORM)
    assert plan["applied"] is False
    assert plan["members_added"] == ["x@example.com"]
    assert plan["members_merged"] == ["both@example.com"]
    assert plan["members_after"] == 2 and plan["max_users"] == 3
    assert plan["settings_taken"] == ["sso"] and plan["settings_kept_from_target"] == ["theme"]
    assert await scenes.snapshot(app) == before

    done = await merge_organizations(app, str(source), "bob", caller=PLATFORM, apply=True)
    assert done["applied"] is True
    members = await sql(
        app,
        "SELECT jsonb_object_agg(u.email, jsonb_build_array(m.role, m.permissions)) "
        "FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.organization_id = :o",
        o=target,
    )
    assert members == {
        "both@example.com": ["org_admin", ["a", "b"]],
        "x@example.com": ["org_user", []],
    }
    assert await sql(app, "SELECT count(*) FROM organizations WHERE id = :o", o=source) == 0
    settings = await sql(app, "SELECT settings FROM organizations WHERE id = :o", o=target)
    assert settings == {"sso": True, "theme": "blue"}
    audit = await sql(app, "SELECT data FROM audit_events WHERE action = 'organization.merged'")
    assert audit["source"]["slug"] == "bob-org" and audit["members_added"] == ["x@example.com"]
    await assert_guarantees(app)


async def test_merge_refuses_what_would_break_a_guarantee(fake_app: Planted) -> None:
    app = fake_app.app
    source, target = await two_teams(fake_app)
    await sql(app, "UPDATE organizations SET max_users = 1 WHERE id = :o", o=target)
    before = await scenes.snapshot(app)

    with pytest.raises(errors.OrganizationFull) as full:
        await merge_organizations(app, str(source), str(target), caller=PLATFORM, apply=True)
    assert "over its limit of 1" in full.value.message

    bob = await register(app, Registration("bob@example.com", "correct horse 42", "Bob"))
    personal = bob["organization"]["slug"]
    with pytest.raises(errors.InvalidInput) as personal_source:
        await merge_organizations(app, personal, str(source), caller=PLATFORM, apply=True)
    assert "personal organization" in personal_source.value.message
    with pytest.raises(errors.InvalidInput):
        await merge_organizations(app, str(source), str(source), caller=PLATFORM)
    with pytest.raises(errors.OrganizationNotFound):
        await merge_organizations(app, "no-such-org", str(target), caller=PLATFORM)
    with pytest.raises(errors.Forbidden):
        viewer = PLATFORM.organization("token:org", target)
        await merge_organizations(app, str(source), str(target), caller=viewer)
    after = await scenes.snapshot(app)
    assert after["orgs"] == sorted([*before["orgs"], (personal,)])

    def of_the_two(snapshot: dict) -> list:
        return [m for m in snapshot["members"] if m[1] in (source, target)]

    assert of_the_two(after) == of_the_two(before)


async def test_two_merges_of_one_target_run_one_after_the_other(fake_app: Planted) -> None:
    app = fake_app.app
    target = await new_org(app, "Target", max_users=10)
    sources = [await new_org(app, f"Source {n}", max_users=10) for n in range(2)]
    for n, source in enumerate(sources):
        await create_user(app, NewUser(f"s{n}@example.com", "S", source), caller=PLATFORM)

    await asyncio.gather(
        *(
            merge_organizations(app, str(s), str(target), caller=PLATFORM, apply=True)
            for s in sources
        )
    )

    count = "SELECT count(*) FROM memberships WHERE organization_id = :o"
    assert await sql(app, count, o=target) == 2
    await assert_guarantees(app)
