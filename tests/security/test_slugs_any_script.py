"""Organization names in any script get distinct, readable slugs; a clash gets a suffix, never
a 409; a name of invisible characters only is refused (issue 11, LOW). Fails on main 2a4d142:
"東京" and "北京" both became "org", then a 409 ``organization_exists``."""

from __future__ import annotations

import pytest

from accord.domain import errors
from accord.domain.callers import Caller
from accord.domain.slugs import slugify
from accord.services.organizations import NewOrganization, create_organization
from accord.services.registration import Registration, registration_body
from accord.testing import fake_context

PLATFORM = Caller.platform("token:test")


def test_scripts_transliterate_to_distinct_readable_slugs() -> None:
    slugs = {name: slugify(name) for name in ("東京", "北京", "Москва", "Zoë Ünal")}
    assert slugs == {
        "東京": "dong-jing",
        "北京": "bei-jing",
        "Москва": "moskva",
        "Zoë Ünal": "zoe-unal",
    }


async def test_names_sharing_a_slug_get_a_suffix_not_a_conflict() -> None:
    ctx = fake_context()
    wide = "\uff21\uff43\uff4d\uff45"  # full-width "Acme"
    created = [
        await create_organization(ctx, NewOrganization(name), caller=PLATFORM)
        for name in ("Acme", "ACME", "acme!", wide)
    ]
    assert [org["slug"] for org in created] == ["acme", "acme-2", "acme-3", "acme-4"]
    assert [org["display_name"] for org in created] == ["Acme", "ACME", "acme!", wide]


@pytest.mark.parametrize("name", ["\u200b\u200b", "\u200d\u2060", "\u202e\u200b", "\u200b \u200b"])
async def test_a_name_of_invisible_characters_only_is_refused(name: str) -> None:
    ctx = fake_context()
    with pytest.raises(errors.InvalidInput, match="no visible character"):
        await create_organization(ctx, NewOrganization(name), caller=PLATFORM)
    with pytest.raises(errors.InvalidInput, match="no visible character"):
        registration_body(
            Registration("zoe@example.com", "a long passphrase", "Zoë", organization_name=name)
        )
