"""Runs one flow in its own process, for the crash tests: ``python -m tests.crash.run_flow
FLOW JSON``. Settings come from the environment (ACCORD_CRASH_AT among them). With
``"fail_hook": true`` an extension hook fails, so the operation compensates; with
``"adopt_existing": true`` an admin create links a foreign identity. The answer (result
or error code) is printed as one JSON line, for the test to compare with a retry."""

from __future__ import annotations

import asyncio
import json
import sys
from uuid import UUID

from accord.bootstrap import Accord, build
from accord.domain.callers import Caller
from accord.domain.errors import AccordError
from accord.services.deprovisioning import deprovision_user
from accord.services.offboarding import delete_organization
from accord.services.provisioning import NewUser, create_user
from accord.services.registration import Registration, register
from accord.services.suspension import reactivate_user, suspend_user


async def main(flow: str, args: dict) -> None:
    accord = build()
    if args.get("fail_hook"):
        accord.hooks.register(failing_hook)
    try:
        print(json.dumps(await answer(accord, flow, args)))
    finally:
        await accord.aclose()


async def failing_hook(conn: object, user: object) -> None:
    raise RuntimeError("the application's own table refused the row")


async def answer(accord: Accord, flow: str, args: dict) -> dict:
    """``run``'s result, or ``{"error": code}``: what a client would see."""
    try:
        return {"result": await run(accord, flow, args)}
    except AccordError as exc:
        return {"error": exc.code}


async def run(accord: Accord, flow: str, args: dict) -> dict:
    """Run ``flow`` with ``args`` on ``accord``."""
    key = args.get("key")
    adopt = bool(args.get("adopt_existing"))
    if flow == "admin_create":
        request = NewUser(args["email"], "Crash Test", UUID(args["org"]), adopt_existing=adopt)
        return await create_user(
            accord, request, caller=Caller.platform("crash"), idempotency_key=key
        )
    if flow == "org_admin_create":
        caller = Caller.organization("crash-org", UUID(args["org"]))
        request = NewUser(args["email"], "Crash Test", UUID(args["org"]))
        return await create_user(accord, request, caller=caller, idempotency_key=key)
    if flow == "register":
        request = Registration(args["email"], "a long enough password", "Crash Test")
        return await register(accord, request, idempotency_key=key)
    if flow == "accept_invitation":  # the invitation's own key: ``key`` is not used
        from accord.services.acceptance import accept

        return await accept(
            accord, args["token"], full_name="Crash Test", password="a long enough password"
        )
    if flow == "deprovision":
        caller = Caller.platform("crash")
        return await deprovision_user(accord, args["user_id"], caller=caller, idempotency_key=key)
    if flow == "delete_organization":
        caller = Caller.platform("crash")
        return await delete_organization(accord, args["org"], caller=caller, idempotency_key=key)
    if flow == "change_email":
        from accord.services.profile import ProfileChange, update_user

        if args.get("fail_finalize"):
            _fail_change_finalize()
        change = ProfileChange(email=args["new_email"], full_name=args.get("full_name"))
        caller = Caller.platform("crash")
        return await update_user(
            accord, args["user_id"], change, caller=caller, idempotency_key=key
        )
    if flow == "create_webhook":
        from accord.services.webhooks import register_endpoint

        caller = Caller.platform("crash")
        return await register_endpoint(accord, caller, url=args["url"], idempotency_key=key)
    if flow in ("suspend", "reactivate"):
        act = suspend_user if flow == "suspend" else reactivate_user
        caller = Caller.platform("crash")
        return await act(accord, args["user_id"], caller=caller, idempotency_key=key)
    raise SystemExit(f"unknown flow {flow}")


def _fail_change_finalize() -> None:
    """The database refuses an e-mail change after the IdP took it: it must be compensated."""
    from accord.domain.errors import HookFailed
    from accord.services.profile import ChangeProfile

    async def refuse(*args: object, **kwargs: object) -> dict:
        raise HookFailed("the change's finalize failed")

    ChangeProfile.finalize = refuse  # type: ignore[method-assign]


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
