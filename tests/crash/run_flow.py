"""Runs one flow in its own process, for the crash tests: ``python -m tests.crash.run_flow
FLOW JSON``. Settings come from the environment (ACCORD_CRASH_AT among them)."""

from __future__ import annotations

import asyncio
import json
import sys
from uuid import UUID

from accord.bootstrap import Accord, build
from accord.domain.callers import Caller
from accord.services.deprovisioning import deprovision_user
from accord.services.provisioning import NewUser, create_user
from accord.services.registration import Registration, register


async def main(flow: str, args: dict) -> None:
    accord = build()
    try:
        await run(accord, flow, args)
    finally:
        await accord.aclose()


async def run(accord: Accord, flow: str, args: dict) -> None:
    """Run ``flow`` with ``args`` on ``accord``."""
    key = args.get("key")
    if flow == "admin_create":
        request = NewUser(args["email"], "Crash Test", UUID(args["org"]))
        await create_user(accord, request, caller=Caller.platform("crash"), idempotency_key=key)
    elif flow == "org_admin_create":
        caller = Caller.organization("crash-org", UUID(args["org"]))
        request = NewUser(args["email"], "Crash Test", UUID(args["org"]))
        await create_user(accord, request, caller=caller, idempotency_key=key)
    elif flow == "register":
        request = Registration(args["email"], "a long enough password", "Crash Test")
        await register(accord, request, idempotency_key=key)
    elif flow == "deprovision":
        caller = Caller.platform("crash")
        await deprovision_user(accord, args["user_id"], caller=caller, idempotency_key=key)
    else:
        raise SystemExit(f"unknown flow {flow}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
