"""Property-based tests of the whole API against its own OpenAPI document (schemathesis).

Every operation gets generated requests (a fixed seed, so CI sees the same ones every run), sent
over real HTTP with a platform token, an organization token or none, and with path ids that
exist about half the time; an eighth of the cases are deliberately invalid. Each response must
not be a 5xx and must conform to the document (documented status, content type, headers, body
schema), and every invalid request must be refused with a 4xx.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from tests.api.conftest import ServeFactory, Tokens, bearer
from tests.patience import PATIENCE

SEED = 20261121
EXAMPLES_PER_OPERATION = 72  # 45 operations x 72 + 3 small ones x 16: about 3,300 requests
# A fixed number of examples, not a time budget: a busy machine makes the run slower (about
# 47 s of CPU in this process, drawing cases is most of it), never smaller.
MIN_REQUESTS = 1000


def checks() -> list[Any]:
    load_all_checks()
    names = (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    )
    return [CHECKS.get_one(name) for name in names]


def seed_data(url: str, creds: Tokens) -> dict[str, list[str]]:
    """Real ids for path parameters: organizations, a user, an operation."""
    platform = bearer(creds.platform)
    created = httpx.post(
        f"{url}/api/admin/users",
        json={"email": "seed@example.com", "full_name": "Seed", "organization_id": str(creds.a)},
        headers=platform,
    )
    assert created.status_code == 201, created.text
    invited = httpx.post(
        f"{url}/api/admin/organizations/{creds.a}/invitations",
        json={"email": "invited-seed@example.com"},
        headers=platform,
    )
    assert invited.status_code == 201, invited.text
    hook = httpx.post(
        f"{url}/api/admin/webhooks",
        json={"url": "https://93.184.215.14/seed", "organization_id": str(creds.a)},
        headers=platform,
    )
    assert hook.status_code == 201, hook.text
    orgs = [str(creds.a), str(creds.b)]
    return {
        "org_id": orgs,
        "organization_id": orgs,
        "user_id": [created.json()["user"]["id"]],
        "operation_id": [created.json()["operation_id"]],
        "invitation_id": [invited.json()["id"]],
        "webhook_id": [hook.json()["id"]],
    }


def exercise(operation: Any, url: str, creds: Tokens, known: dict[str, list[str]]) -> int:
    """Send generated requests for one operation; return how many."""
    sent = 0
    session = requests.Session()
    callers = [creds.platform, creds.platform, creds.org_a, None]
    verify = checks()
    positive = operation.as_strategy(GenerationMode.POSITIVE)
    negative = operation.as_strategy(GenerationMode.NEGATIVE)

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=False,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=st.one_of(*[positive] * 7, negative),  # an eighth invalid (costly to draw)
        token=st.sampled_from(callers),
        real_ids=st.booleans(),
        pick=st.integers(0, 1),
    )
    def run(case: Any, token: str | None, real_ids: bool, pick: int) -> None:
        nonlocal sent
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        case.headers = headers
        if real_ids:
            for name in list(case.path_parameters or {}):
                if name in known:
                    case.path_parameters[name] = known[name][pick % len(known[name])]
        response = case.call(base_url=url, session=session, timeout=PATIENCE)
        sent += 1
        case.validate_response(response, checks=verify)

    run()
    session.close()
    return sent


def test_generated_requests_conform_to_the_openapi_document(
    serve: ServeFactory, creds: Tokens
) -> None:
    from accord.testing import FakeIdentityProvider

    started, cpu = time.monotonic(), time.process_time()
    with serve(idp=FakeIdentityProvider()) as url:
        known = seed_data(url, creds)
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) == 48
        total = 0
        for operation in operations:
            sent = exercise(operation, url, creds, known)
            assert sent > 0, operation.label
            total += sent
    elapsed = time.monotonic() - started
    busy = time.process_time() - cpu  # this process: generation, client and server
    print(f"\nschemathesis: {total} requests, seed {SEED}, {elapsed:.1f} s ({busy:.1f} s CPU)")
    assert total >= MIN_REQUESTS, f"only {total} requests: the generation found too few cases"
