"""scim2-tester, the python-scim project's black-box compliance checker (pinned in the dev
dependencies), against an empty organization of a running server: every check it runs for the
schemas accord advertises passes, or is skipped for a feature accord says it lacks."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from accord.bootstrap import Accord
from accord.services import scim_tokens
from tests.api.conftest import ServeFactory, Tokens, new_org


def _run(url: str, token: str) -> list[Any]:
    with httpx2.Client(
        base_url=f"{url}/scim/v2", headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as http:
        return check_server(SyncSCIMClient(http), raise_exceptions=False)


async def test_scim2_tester_passes_every_check_on_an_empty_tenant(
    accord: Accord, serve: ServeFactory, creds: Tokens
) -> None:
    empty = await new_org(accord, f"Empty {creds.tag}", max_users=100)
    token, _ = await scim_tokens.create_scim_token(accord, empty)
    with serve() as url:
        results = await asyncio.to_thread(_run, url, token)
    counts = Counter(r.status for r in results)
    failed = [r for r in results if r.status not in (Status.SUCCESS, Status.SKIPPED)]
    print(
        f"scim2-tester: {counts[Status.SUCCESS]}/{len(results) - counts[Status.SKIPPED]} passed,"
        f" {counts[Status.SKIPPED]} skipped"
    )
    for r in results:
        print(r.status.name, r.title, r.reason)
    assert failed == []
    assert counts[Status.SUCCESS] >= 61  # 61/61 with Groups (scim2-tester 0.5.2)
