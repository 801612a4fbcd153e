"""The checker every concurrency, crash and model test relies on (tests/guarantees.py) catches
each guarantee's violation: a healthy state made by the real services passes, then exactly one
violation is planted by hand and the checker must name its guarantee."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from uuid import UUID, uuid4

import pytest
from sqlalchemy import insert

from accord.adapters.db.tables import local_identities
from accord.bootstrap import Accord
from accord.config import PasswordSettings
from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.model import CredentialMode
from accord.services import tokens, worker
from accord.services.deprovisioning import deprovision_user
from accord.services.provisioning import NewUser, create_user
from accord.services.registration import Registration, register
from accord.services.suspension import reactivate_user, suspend_user
from accord.services.verification import request_registration
from tests.drift import scenes
from tests.drift.conftest import sql
from tests.engine.conftest import PLATFORM, new_org
from tests.guarantees import assert_guarantees, assert_tenant_isolation
from tests.mailbox import SmtpServer

TOO_SHORT = "short"  # the local IdP's password policy rejects it: the operation fails


@dataclass
class Scene:
    """A settled, healthy state: what the plants need to know of it."""

    app: Accord
    acme: UUID
    beta: UUID
    ada: dict  # invited into Acme (pending, invitation sent)
    bob: dict  # registered (active, one personal organization)
    cy: UUID  # deprovisioned, then a registration for the address failed (a new row, removed)
    cy_again: UUID  # the failed registration's own (removed) row
    eve_op: UUID  # a registration that failed: its row was created and removed
    eve_user: UUID
    fay: dict  # another system's account, linked by a platform caller who asked to


async def failed_registration(app: Accord, email: str) -> tuple[UUID, UUID]:
    # accord's own strength rule off, so that the IdP's policy is what refuses the password.
    lenient = replace(
        app, settings=app.settings.model_copy(update={"password": PasswordSettings(min_score=0)})
    )
    with pytest.raises(errors.RemoteRejected):
        await register(lenient, Registration(email, TOO_SHORT, "Failed"))
    row = await sql(
        app,
        "SELECT json_build_array(id, user_id) FROM operations "
        "WHERE kind = 'register' AND state = 'failed' AND request->>'email' = :e "
        "ORDER BY created_at DESC LIMIT 1",
        e=email,
    )
    return UUID(row[0]), UUID(row[1])


@pytest.fixture
async def scene(accord: Accord, smtp: SmtpServer) -> Scene:
    acme, beta = await new_org(accord, "Acme", max_users=5), await new_org(accord, "Beta")
    ada = await scenes.user(accord, "ada@example.com", acme)
    temporary = NewUser("tom@example.com", "Tom", acme, credential=CredentialMode.TEMP_PASSWORD)
    await create_user(accord, temporary, caller=PLATFORM, idempotency_key="tom-key")
    bob = await register(accord, Registration("bob@example.com", "correct horse 42", "Bob"))
    cy = (await scenes.user(accord, "cy@example.com", beta))["id"]
    await deprovision_user(accord, cy, caller=PLATFORM)
    _, cy_again = await failed_registration(accord, "cy@example.com")
    assert str(cy_again) != cy  # a new person: the deprovisioned row keeps its history
    eve_op, eve_user = await failed_registration(accord, "eve@example.com")
    await foreign_identity(accord, "fay@example.com")
    adopt = NewUser("fay@example.com", "Fay", acme, adopt_existing=True)
    fay = (await create_user(accord, adopt, caller=PLATFORM))["user"]
    await tokens.create_token(accord, name="platform")
    await worker.run_until_idle(accord, smtp.mailer())  # sends Ada's invitation
    assert await sql(accord, "SELECT count(*) FROM one_time_tokens") == 1
    return Scene(accord, acme, beta, ada, bob["user"], UUID(cy), cy_again, eve_op, eve_user, fay)


async def foreign_identity(app: Accord, email: str) -> None:
    """An account another system made in the shared IdP: no accord stamp."""
    async with app.db.transaction() as conn:
        await conn.execute(insert(local_identities).values(id=str(uuid4()), email=email))


async def violated(scene: Scene, guarantee: str) -> None:
    with pytest.raises(AssertionError, match=f"^{guarantee}: "):
        await assert_guarantees(scene.app)


async def test_the_healthy_state_passes(scene: Scene) -> None:
    await assert_guarantees(scene.app)


async def test_an_open_operation_exempts_only_what_it_owns(scene: Scene) -> None:
    await scenes.stuck_operation(scene.app, "late@example.com", scene.acme, past_deadline=False)
    await assert_guarantees(scene.app)  # its `provisioning` row is its own
    await scenes.ghost_idp_user(scene.app, "ghost@example.com")
    await violated(scene, "G3")


# -- G1 one identity per e-mail ------------------------------------------------------------------


async def test_g1_two_idp_users_for_one_normalized_email(scene: Scene) -> None:
    async with scene.app.db.transaction() as conn:
        await conn.execute(
            insert(local_identities).values(
                id=str(uuid4()), email="ADA@Example.com", accord_user_id=str(uuid4())
            )
        )
    await violated(scene, "G1")


# -- G2 no orphan rows ---------------------------------------------------------------------------


async def test_g2_a_pending_row_whose_idp_user_was_deleted(scene: Scene) -> None:
    await scene.app.idp.delete(scene.ada["remote_id"])
    await violated(scene, "G2")


async def test_g2_a_row_whose_idp_user_has_another_email(scene: Scene) -> None:
    await scene.app.idp.update(scene.ada["remote_id"], email="ada.other@example.com")
    await violated(scene, "G2")


async def test_g2_a_row_whose_idp_user_has_another_name(scene: Scene) -> None:
    await scene.app.idp.update(scene.ada["remote_id"], full_name="Somebody Else")
    await violated(scene, "G2")


# -- G3 no orphan IdP users ----------------------------------------------------------------------


async def test_g3_an_idp_user_accord_made_without_a_row(scene: Scene) -> None:
    await scenes.ghost_idp_user(scene.app, "ghost@example.com")
    await violated(scene, "G3")


async def test_g3_a_foreign_idp_user_without_a_row_is_not_an_orphan(accord: Accord) -> None:
    # Another system's account (no accord stamp), which accord refused to take over: not G3.
    acme = await new_org(accord, "Acme")
    await scenes.user(accord, "ada@example.com", acme)
    await foreign_identity(accord, "legacy@example.com")
    with pytest.raises(errors.IdentityExists):
        await create_user(accord, NewUser("legacy@example.com", "L", acme), caller=PLATFORM)
    await assert_guarantees(accord)
    await scenes.ghost_idp_user(accord, "ghost@example.com")  # accord's own stamp: an orphan
    with pytest.raises(AssertionError, match=r"^G3: "):
        await assert_guarantees(accord)


# -- G4 one organization per registration, no triggers -------------------------------------------


async def test_g4_a_team_organization_for_a_registrant(scene: Scene) -> None:
    await scenes.duplicate_organization(scene.app, scene.bob["id"], "bob-team")  # seed 001
    await violated(scene, "G4")


async def test_g4_a_registrant_without_an_organization(scene: Scene) -> None:
    await sql(scene.app, "UPDATE organizations SET owner_user_id = NULL WHERE kind = 'personal'")
    await violated(scene, "G4")


async def test_g4_a_trigger_on_users(scene: Scene) -> None:
    await sql(
        scene.app,
        "CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$",
    )
    await sql(
        scene.app,
        "CREATE TRIGGER on_profile AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION noop()",
    )
    await violated(scene, "G4")


# -- G5 limits -----------------------------------------------------------------------------------


async def test_g5_an_organization_over_its_max_users(scene: Scene) -> None:
    await sql(scene.app, "UPDATE organizations SET max_users = 1 WHERE id = :o", o=scene.acme)
    await violated(scene, "G5")


# -- G7 failure leaves no trace ------------------------------------------------------------------


async def test_g7_a_provisioning_row_no_operation_owns(scene: Scene) -> None:
    await scenes.never_finished_row(scene.app, "half@example.com")
    await violated(scene, "G7")


async def test_g7_the_row_a_failed_operation_created(scene: Scene) -> None:
    await sql(
        scene.app,
        "INSERT INTO users (id, former_email, full_name, status) "
        "VALUES (:i, 'eve@example.com', 'Eve', 'disabled')",
        i=scene.eve_user,
    )
    await violated(scene, "G7")


async def test_g7_a_membership_of_a_failed_operation(scene: Scene) -> None:
    # An operation older code started by reclaiming a deprovisioned row: its failure may leave
    # the row (retired again), never a membership.
    await sql(
        scene.app,
        "UPDATE operations SET flow_state = flow_state || '{\"reclaimed\": true}' "
        "WHERE user_id = :u",
        u=scene.cy_again,
    )
    await sql(
        scene.app,
        "INSERT INTO users (id, former_email, full_name, status) "
        "VALUES (:i, 'cy@example.com', 'Cy', 'disabled')",
        i=scene.cy_again,
    )
    await sql(
        scene.app,
        "INSERT INTO memberships (user_id, organization_id, role) VALUES (:u, :o, 'org_user')",
        u=scene.cy_again,
        o=scene.beta,
    )
    await violated(scene, "G7")


async def test_g7_mail_of_a_failed_operation(scene: Scene) -> None:
    await sql(
        scene.app,
        "INSERT INTO outbox (kind, dedupe_key, recipient, payload, sent_at) "
        "VALUES ('invitation', :k, 'eve@example.com', CAST(:p AS jsonb), now())",
        k=f"invitation:{scene.eve_op}",
        p=json.dumps({"user_id": str(scene.eve_user)}),
    )
    await violated(scene, "G7")


async def test_g7_the_idp_user_a_failed_operation_created(scene: Scene) -> None:
    stamp = str(scene.eve_user)
    async with scene.app.db.transaction() as conn:
        await conn.execute(
            insert(local_identities).values(id=stamp, email="eve@example.com", accord_user_id=stamp)
        )
    await violated(scene, "G7")


# -- G8 mail after commit ------------------------------------------------------------------------


async def test_g8_two_messages_for_one_dedupe_key(scene: Scene) -> None:
    await sql(scene.app, "ALTER TABLE outbox DROP CONSTRAINT uq_outbox_dedupe_key")
    await sql(
        scene.app,
        "INSERT INTO outbox (kind, dedupe_key, recipient, payload, sent_at) "
        "SELECT kind, dedupe_key, recipient, payload, sent_at FROM outbox",
    )
    await violated(scene, "G8")


async def test_g8_unsent_mail_for_a_disabled_user(scene: Scene) -> None:
    await sql(
        scene.app,
        "INSERT INTO outbox (kind, dedupe_key, recipient, payload) "
        "VALUES ('password_setup', 'late', 'cy@example.com', CAST(:p AS jsonb))",
        p=json.dumps({"user_id": str(scene.cy)}),
    )
    await violated(scene, "G8")


async def test_g8_mail_queued_before_its_operation_committed(scene: Scene) -> None:
    await scenes.stuck_operation(scene.app, "late@example.com", scene.acme, past_deadline=False)
    await sql(
        scene.app,
        "INSERT INTO outbox (kind, dedupe_key, recipient, payload, sent_at) "
        "SELECT 'invitation', 'invitation:' || id, 'late@example.com', '{}', now() "
        "FROM operations WHERE state = 'open'",
    )
    await violated(scene, "G8")


# -- G9 secrets stay secret ----------------------------------------------------------------------


async def test_g9_a_plaintext_one_time_token(scene: Scene) -> None:
    await sql(scene.app, "UPDATE one_time_tokens SET digest = 'the-token-itself'")
    await violated(scene, "G9")


async def test_g9_a_plaintext_api_token(scene: Scene) -> None:
    await sql(scene.app, "UPDATE api_tokens SET digest = 'acc_the-token-itself'")
    await violated(scene, "G9")


async def test_g9_a_plaintext_password(scene: Scene) -> None:
    await sql(
        scene.app,
        "UPDATE local_credentials SET secret_hash = 'correct horse 42' WHERE identity_id = "
        "(SELECT remote_id FROM idp_links WHERE user_id = :u)",
        u=scene.bob["id"],
    )
    await violated(scene, "G9")


async def test_g9_a_temporary_password_kept_under_a_bare_digest(scene: Scene) -> None:
    # A generated secret's digest, but not marked as the expiring temporary credential it is.
    await sql(
        scene.app,
        "UPDATE local_credentials SET secret_hash = 'sha256$' || repeat('a', 64), "
        "is_temporary = false, expires_at = NULL WHERE is_temporary",
    )
    await violated(scene, "G9")


async def test_g9_a_password_in_an_operation_request(scene: Scene) -> None:
    await sql(
        scene.app,
        'UPDATE operations SET request = request || \'{"password": "correct horse 42"}\' '
        "WHERE kind = 'register' AND state = 'succeeded'",
    )
    await violated(scene, "G9")


async def test_g9_sealed_secrets_kept_by_a_failed_operation(scene: Scene) -> None:
    await sql(
        scene.app, "UPDATE operations SET sealed_secrets = '\\x00' WHERE id = :o", o=scene.eve_op
    )
    await violated(scene, "G9")


async def test_g9_a_finished_registration_keeps_its_password(scene: Scene) -> None:
    sealed = scene.app.sealer.seal({"password": "correct horse 42"})
    await sql(
        scene.app,
        "UPDATE operations SET sealed_secrets = :s WHERE kind = 'register' AND state = 'succeeded'",
        s=sealed,
    )
    await violated(scene, "G9")


async def test_g9_a_temporary_password_kept_with_no_key_to_replay(scene: Scene) -> None:
    await sql(
        scene.app,
        "UPDATE operations SET idempotency_key = NULL WHERE idempotency_key = 'tom-key'",
    )
    await violated(scene, "G9")


async def test_g9_a_plaintext_verification_link(scene: Scene) -> None:
    await request_registration(scene.app, Registration("vera@example.com", "pass phrase", "Vera"))
    await assert_guarantees(scene.app)  # waiting for its link: its password is sealed
    await sql(
        scene.app,
        "ALTER TABLE email_verifications DROP CONSTRAINT ck_email_verifications_digest_sha256",
    )
    await sql(scene.app, "UPDATE email_verifications SET digest = 'the-token-itself'")
    await violated(scene, "G9")


# -- G11 identities accord did not make are not accord's ----------------------------------------


async def test_g11_a_foreign_identity_marked_as_accords_own(scene: Scene) -> None:
    # accord would delete it on the user's deprovisioning, or an org admin's DELETE.
    await sql(
        scene.app,
        "UPDATE idp_links SET created_by_accord = true WHERE user_id = :u",
        u=scene.fay["id"],
    )
    await violated(scene, "G11")


async def test_g11_a_foreign_identity_linked_without_a_request(scene: Scene) -> None:
    await sql(
        scene.app,
        "UPDATE local_identities SET accord_user_id = NULL WHERE email = 'ada@example.com'",
    )
    await sql(
        scene.app,
        "UPDATE idp_links SET created_by_accord = false WHERE user_id = :u",
        u=scene.ada["id"],
    )
    await violated(scene, "G11")


async def test_g11_a_deprovisioned_user_back_in_an_organization(scene: Scene) -> None:
    await sql(
        scene.app,
        "INSERT INTO memberships (user_id, organization_id, role) VALUES (:u, :o, 'org_user')",
        u=scene.cy,
        o=scene.beta,
    )
    await violated(scene, "G11")


# -- G10 tenants stay apart ----------------------------------------------------------------------


async def test_g10_another_tenants_objects_look_missing(scene: Scene) -> None:
    await assert_tenant_isolation(scene.app, Caller.organization("token:acme", scene.acme))


# -- G2, suspension: the IdP's enabled state equals the database's --------------------------------


async def test_g2_a_suspension_through_the_service_passes(scene: Scene) -> None:
    await suspend_user(scene.app, scene.ada["id"], caller=PLATFORM)
    await assert_guarantees(scene.app)
    await reactivate_user(scene.app, scene.ada["id"], caller=PLATFORM)
    await assert_guarantees(scene.app)


async def test_g2_a_suspended_row_whose_idp_user_still_signs_in(scene: Scene) -> None:
    await sql(
        scene.app,
        "UPDATE users SET status = 'suspended' WHERE email = 'ada@example.com' RETURNING 1",
    )
    await violated(scene, "G2")


async def test_g2_an_active_row_whose_idp_user_is_blocked(scene: Scene) -> None:
    await scene.app.idp.set_enabled(scene.bob["id"], False)  # local: remote id = user id
    await violated(scene, "G2")


async def test_g2_a_suspended_row_whose_idp_user_was_deleted(scene: Scene) -> None:
    await suspend_user(scene.app, scene.ada["id"], caller=PLATFORM)
    await scene.app.idp.delete(scene.ada["remote_id"])
    await violated(scene, "G2")
