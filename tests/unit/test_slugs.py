import pytest

from accord.domain.slugs import FALLBACK_SLUG, MAX_SLUG_LENGTH, slug_candidates, slugify


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Acme Corp", "acme-corp"),
        ("  Acme   Corp!!  ", "acme-corp"),
        ("Zoë's Café", "zoe-s-cafe"),
        ("bob_org", "bob-org"),
        ("bob.smith", "bob-smith"),
        ("ÅNGSTRÖM  Labs", "angstrom-labs"),
        ("R&D / Ops", "r-d-ops"),
        ("2024 Team", "2024-team"),
        ("日本語", "ri-ben-yu"),
        ("Москва", "moskva"),
        ("\uff46\uff55\uff4c\uff4c \uff57\uff49\uff44\uff54\uff48", "full-width"),
    ],
)
def test_slugify(text: str, expected: str) -> None:
    assert slugify(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "!!!", "\u200b", "---"])
def test_nothing_left_gives_the_fallback(text: str) -> None:
    assert slugify(text) == FALLBACK_SLUG


def test_long_names_are_cut_without_a_trailing_dash() -> None:
    slug = slugify("word " * 40)
    assert len(slug) <= MAX_SLUG_LENGTH
    assert not slug.endswith("-")


def test_candidates_add_suffixes_within_the_limit() -> None:
    base = "x" * MAX_SLUG_LENGTH
    candidates = slug_candidates(base)
    first, second, third = next(candidates), next(candidates), next(candidates)
    assert first == base
    assert second.endswith("-2") and len(second) == MAX_SLUG_LENGTH
    assert third.endswith("-3") and len(third) == MAX_SLUG_LENGTH


def test_candidates_of_a_short_base() -> None:
    candidates = slug_candidates("acme")
    assert [next(candidates) for _ in range(3)] == ["acme", "acme-2", "acme-3"]
