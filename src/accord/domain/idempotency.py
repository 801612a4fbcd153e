"""The Idempotency-Key's one rule, for every entry point (HTTP, CLI, import, SCIM).

The IETF draft sets no minimum length. accord takes 1 to 255 visible ASCII characters without
the double quote (which frames a structured-field string: ``"order-42"`` is the key
``order-42``); a UUID is a good choice, and so is ``order-42``.
"""

from __future__ import annotations

import re

from accord.domain.errors import InvalidInput

MAX_KEY_LENGTH = 255
KEY_PATTERN = r"[!#-~]{1,255}"
_KEY = re.compile(KEY_PATTERN)


def check_idempotency_key(key: str | None) -> None:
    """InvalidInput unless ``key`` is absent or follows the rule above."""
    if key is not None and not _KEY.fullmatch(key):
        raise InvalidInput(
            f"The Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters "
            'without spaces or `"`.'
        )
