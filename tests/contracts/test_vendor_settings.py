"""Settings and URLs an operator can get wrong for each vendor IdP: accord names what to fix
(a misconfiguration, which the worker does not count against an operation) rather than
retrying for ever; and a Keycloak create whose answer has no usable id is never taken for done."""

from __future__ import annotations

import uuid

import httpx
import pytest

from accord.adapters.idp.registry import build
from accord.adapters.idp.supabase import SupabaseProvider
from accord.config import Settings
from accord.domain.errors import ConfigurationError, OutcomeUnknown, ProviderMisconfigured
from accord.domain.ports import NewRemoteUser
from accord.emulators.supabase import DEFAULT_SERVICE_ROLE_KEY
from tests.contracts.harness_keycloak import provider_for
from tests.patience import PATIENCE


@pytest.mark.parametrize(
    ("idp", "says"),
    [
        ("auth0", "set ACCORD_AUTH0__DOMAIN, ACCORD_AUTH0__CLIENT_ID, ACCORD_AUTH0__CLIENT_SECRET"),
        ("supabase", "ACCORD_SUPABASE__"),
    ],
)
def test_a_vendor_chosen_without_its_settings_names_them(idp: str, says: str) -> None:
    with pytest.raises((ConfigurationError, ProviderMisconfigured), match=says):
        build(Settings(idp=idp), db=None)  # type: ignore[arg-type]  # vendors use no database


async def test_a_supabase_url_without_a_scheme_is_misconfiguration() -> None:
    provider = SupabaseProvider("project.supabase.co", DEFAULT_SERVICE_ROLE_KEY)
    with pytest.raises(ProviderMisconfigured, match="check ACCORD_SUPABASE__URL"):
        await provider.find_by_email("ada@example.com")
    await provider.aclose()


async def test_a_shared_client_stays_open_for_its_owner() -> None:
    shared = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200)))
    provider = SupabaseProvider("http://gotrue.test", DEFAULT_SERVICE_ROLE_KEY, client=shared)
    await provider.aclose()
    assert not shared.is_closed
    await shared.aclose()


@pytest.mark.parametrize("location", [None, "http://kc.test/admin/realms/accord/groups/g1"])
async def test_a_keycloak_create_without_a_usable_location_is_outcome_unknown(
    location: str | None,
) -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 300})
        headers = {"Location": location} if location else {}
        return httpx.Response(201, headers=headers)

    idp = provider_for(
        "http://kc.test", transport=httpx.MockTransport(route), timeout_seconds=PATIENCE
    )
    user = NewRemoteUser(uuid.uuid4(), "ada@example.com", "Ada Lovelace")
    with pytest.raises(OutcomeUnknown, match="no usable Location"):  # looked up again, not done
        await idp.create(user)
    await idp.aclose()
