"""Slugs: the URL-safe, unique name of an organization. One function makes them everywhere."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

from slugify import slugify as _transliterate

from accord.domain.errors import InvalidInput

MAX_SLUG_LENGTH = 48
FALLBACK_SLUG = "org"

# Format (Cf: zero-width spaces and joiners, bidi controls), control, and separator characters
# show nothing on their own: a name made only of them reads as empty.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me"})


def slugify(text: str, *, max_length: int = MAX_SLUG_LENGTH) -> str:
    """Lower-case ASCII words of ``text`` joined by '-', at most ``max_length`` characters.

    Any script is transliterated by python-slugify ("Zoë" → "zoe", "東京" → "dong-jing",
    "Москва" → "moskva"); anything else that is not a letter or digit separates words. Text
    with nothing left (punctuation only) gives ``FALLBACK_SLUG``, so the result is never empty.
    """
    slug = _transliterate(unicodedata.normalize("NFKC", text), max_length=max_length)
    return slug.rstrip("-") or FALLBACK_SLUG


def require_visible_name(name: str, what: str = "The organization name") -> None:
    """InvalidInput if ``name`` has no visible character (only spaces, zero-width or controls)."""
    if not any(unicodedata.category(ch) not in _INVISIBLE_CATEGORIES for ch in name):
        raise InvalidInput(
            f"{what} has no visible character (only spaces, zero-width or control "
            "characters); use letters or digits in any script."
        )


def slug_candidates(base: str, *, max_length: int = MAX_SLUG_LENGTH) -> Iterator[str]:
    """``base``, then ``base-2``, ``base-3``, …: each within ``max_length`` (the base is cut)."""
    yield base[:max_length]
    n = 2
    while True:
        suffix = f"-{n}"
        yield base[: max_length - len(suffix)].rstrip("-") + suffix
        n += 1
