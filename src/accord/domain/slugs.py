"""Slugs: the URL-safe, unique name of an organization. One function makes them everywhere."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

MAX_SLUG_LENGTH = 48
FALLBACK_SLUG = "org"

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def slugify(text: str, *, max_length: int = MAX_SLUG_LENGTH) -> str:
    """Lower-case ASCII words of ``text`` joined by '-', at most ``max_length`` characters.

    Accents are folded ("Zoë" → "zoe"); anything else that is not a letter or digit separates
    words. Text with nothing left (punctuation only, or a script without an ASCII folding)
    gives ``FALLBACK_SLUG``, so the result is never empty.
    """
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_ALNUM.sub("-", folded.lower()).strip("-")
    slug = slug[:max_length].rstrip("-")
    return slug or FALLBACK_SLUG


def slug_candidates(base: str, *, max_length: int = MAX_SLUG_LENGTH) -> Iterator[str]:
    """``base``, then ``base-2``, ``base-3``, …: each within ``max_length`` (the base is cut)."""
    yield base[:max_length]
    n = 2
    while True:
        suffix = f"-{n}"
        yield base[: max_length - len(suffix)].rstrip("-") + suffix
        n += 1
