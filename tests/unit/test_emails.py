import pytest

from accord.domain.emails import normalize_email
from accord.domain.errors import EmailInvalid


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Alice@Example.COM ", "alice@example.com"),
        ("\tbob@example.com\n", "bob@example.com"),
        ("ZOË@Example.com", "zoë@example.com"),
        ("zoe\u0308@example.com", "zoë@example.com"),  # decomposed ë → NFC
        ("user+tag@sub.example.org", "user+tag@sub.example.org"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("δοκιμή@παράδειγμα.δοκιμή", "δοκιμή@παράδειγμα.δοκιμή"),
    ],
)
def test_normalizes_case_space_and_unicode_form(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


def test_variants_of_one_address_normalize_to_one_value() -> None:
    variants = ["Alice@Example.com", " alice@example.com", "ALICE@EXAMPLE.COM  "]
    assert {normalize_email(v) for v in variants} == {"alice@example.com"}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("no-at-sign.example.com", "@"),
        ("two@@example.com", "not valid"),
        ("alice@", "not valid"),
        ("@example.com", "not valid"),
        ("alice@exa mple.com", "not valid"),
        ("alice..bob@example.com", "not valid"),
        ("a" * 65 + "@example.com", "at most 64"),
        ("a@" + "b" * 250 + ".com", "at most 254"),
    ],
)
def test_rejects_invalid_addresses_with_a_reason(raw: str, fragment: str) -> None:
    with pytest.raises(EmailInvalid) as caught:
        normalize_email(raw)
    assert fragment in caught.value.message
    assert caught.value.code == "email_invalid"


def test_rejects_non_text() -> None:
    with pytest.raises(EmailInvalid):
        normalize_email(None)  # type: ignore[arg-type]
