"""E-mails a person reads as one address are one identity; a mixed-script look-alike is refused
(issue 11, LOW). Fails on main 2a4d142: "\\uff41dmin@" and "\\ufb01le@" were other addresses than
"admin@" and "file@", and a Cyrillic "\\u0430" among Latin letters was accepted."""

from __future__ import annotations

import pytest

from accord.domain import errors
from accord.domain.emails import normalize_email
from accord.services.registration import Registration, register
from accord.testing import fake_context

PASSWORD = "a long and unusual passphrase"


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("\uff41dmin@example.com", "admin@example.com"),  # full-width a
        ("\uff21\uff24\uff2d\uff29\uff2e@example.com", "admin@example.com"),  # full-width ADMIN
        ("\ufb01le@example.com", "file@example.com"),  # the "fi" ligature
        ("Stra\u00dfe@example.com", "strasse@example.com"),  # case folding, not lower()
        ("zoe\u0308@example.com", "zo\u00eb@example.com"),
    ],
)
def test_one_address_as_read_is_one_spelling(raw: str, folded: str) -> None:
    assert normalize_email(raw) == folded


@pytest.mark.parametrize(
    "raw",
    [
        "p\u0430ypal@example.com",  # Cyrillic a among Latin letters
        "\u0430dmin@example.com",
        "j\u043ehn.doe@example.com",  # Cyrillic o
    ],
)
def test_a_mixed_script_look_alike_is_refused(raw: str) -> None:
    with pytest.raises(errors.EmailConfusable) as caught:
        normalize_email(raw)
    assert caught.value.code == "email_confusable"
    assert "one script" in caught.value.message


@pytest.mark.parametrize(
    "raw", ["\u0441\u0435\u0440\u0433\u0435\u0439@example.com", "\u5c71\u7530@example.jp"]
)
def test_a_single_script_address_is_fine(raw: str) -> None:
    assert normalize_email(raw) == raw


async def test_a_folded_variant_is_the_same_account() -> None:
    ctx = fake_context()
    await register(ctx, Registration("admin@example.com", PASSWORD, "Admin"))
    for variant in ("\uff41dmin@example.com", "ADMIN@example.com"):
        with pytest.raises(errors.EmailAlreadyExists):
            await register(ctx, Registration(variant, PASSWORD, "Someone else"))
    with pytest.raises(errors.EmailConfusable):
        await register(ctx, Registration("\u0430dmin@example.com", PASSWORD, "Someone else"))
