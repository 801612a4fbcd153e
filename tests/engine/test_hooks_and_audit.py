"""Extension hooks run inside the finalize transaction; a failing one fails the operation."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from accord.bootstrap import Accord
from accord.domain import errors
from accord.services.hooks import ProvisionedUser
from accord.services.provisioning import NewUser, create_user
from accord.services.registration import Registration, register
from tests.engine.conftest import PLATFORM, new_org, scalar
from tests.guarantees import assert_guarantees


async def make_employee_table(app: Accord) -> None:
    async with app.db.transaction() as conn:
        await conn.execute(
            text("CREATE TABLE employees (user_id uuid PRIMARY KEY, email text, pages text[])")
        )


async def add_employee(conn, user: ProvisionedUser) -> None:
    await conn.execute(
        text("INSERT INTO employees VALUES (:id, :email, :pages)"),
        {"id": user.user_id, "email": user.email, "pages": list(user.permissions)},
    )


async def test_a_hook_writes_application_rows_in_the_same_transaction(app: Accord) -> None:
    await make_employee_table(app)
    app.hooks.register(add_employee)
    org = await new_org(app)
    result = await create_user(
        app,
        NewUser("ada@example.com", "Ada", org, permissions=("dashboard",)),
        caller=PLATFORM,
    )
    assert await scalar(app, "SELECT email FROM employees") == "ada@example.com"
    assert await scalar(app, "SELECT user_id::text FROM employees") == result["user"]["id"]


async def test_a_failing_hook_fails_the_operation_and_leaves_no_trace(app: Accord) -> None:
    await make_employee_table(app)

    async def broken(conn, user: ProvisionedUser) -> None:
        await add_employee(conn, user)
        raise RuntimeError("the HR system said no")

    app.hooks.register(broken)
    org = await new_org(app)
    with pytest.raises(errors.HookFailed) as caught:
        await create_user(app, NewUser("ada@example.com", "Ada", org), caller=PLATFORM)
    assert "RuntimeError" in caught.value.message
    assert await scalar(app, "SELECT count(*) FROM employees") == 0
    assert await scalar(app, "SELECT count(*) FROM users") == 0
    assert [u async for u in app.idp.iter_users()] == []  # the identity it created is gone
    with pytest.raises(errors.HookFailed):
        await register(app, Registration("bob@example.com", "correct horse", "Bob"))
    assert await scalar(app, "SELECT count(*) FROM organizations") == 1  # only Acme
    app.hooks.on_user_provisioned.clear()
    await create_user(app, NewUser("ada@example.com", "Ada", org), caller=PLATFORM)
    await assert_guarantees(app)


async def test_the_audit_log_says_who_did_what_to_whom(app: Accord) -> None:
    from accord.services.deprovisioning import deprovision_user

    org = await new_org(app)
    ada = await create_user(app, NewUser("ada@example.com", "Ada", org), caller=PLATFORM)
    with pytest.raises(errors.EmailAlreadyExists):  # with a key: kept, so the key replays it
        await create_user(
            app, NewUser("ada@example.com", "Ada", org), caller=PLATFORM, idempotency_key="again"
        )
    await deprovision_user(app, ada["user"]["id"], caller=PLATFORM)
    async with app.db.transaction() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT actor, by_kind, claimed_actor, action, subject_email "
                    "FROM audit_events ORDER BY id"
                )
            )
        ).all()
    # The principal (here the test's ``token:platform`` caller, a system name as it is not a
    # token id) is the actor; the acting user it named is kept apart, as a claim.
    by = ("token:platform", "system", "admin@platform.test")
    assert [(r.actor, r.by_kind, r.claimed_actor, r.action, r.subject_email) for r in rows] == [
        (*by, "organization.created", None),
        (*by, "create_user.started", "ada@example.com"),
        (*by, "user.created", "ada@example.com"),
        (*by, "create_user.refused", "ada@example.com"),
        # every membership ends, and the user is deprovisioned, in the claim, with the audit
        (*by, "membership.removed", "ada@example.com"),
        (*by, "user.deprovisioned", "ada@example.com"),
        (*by, "deprovision.started", None),
    ]
