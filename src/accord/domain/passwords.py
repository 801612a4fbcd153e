"""Password strength: how guessable a password a person chooses is, by zxcvbn's estimate.

zxcvbn scores 0 (guessed in a few tries) to 4 (beyond an offline attack's reach); a password
below ``password.min_score`` is refused with zxcvbn's own advice. A generated temporary password
is not checked here: it is random (``secrets.temporary_password``) and scores 4.
"""

from __future__ import annotations

from collections.abc import Iterable

from zxcvbn import zxcvbn  # type: ignore[import-untyped]

from accord.domain import errors

# zxcvbn's cost grows with the length; a longer password is judged by its first 72 characters,
# which can only make it look weaker than it is.
JUDGED_LENGTH = 72


def strength(password: str, user_inputs: Iterable[str] = ()) -> tuple[int, list[str]]:
    """zxcvbn's score (0-4) of ``password`` and its advice, knowing the person's own words."""
    words = [w for text in user_inputs for w in [text, *text.replace("@", " ").split()] if w]
    result = zxcvbn(password[:JUDGED_LENGTH], user_inputs=words)
    feedback = result.get("feedback") or {}
    advice = [feedback.get("warning") or "", *(feedback.get("suggestions") or [])]
    return int(result["score"]), [a for a in advice if a]


def check_strength(password: str, *, min_score: int, user_inputs: Iterable[str] = ()) -> None:
    """Raise PasswordTooWeak, with zxcvbn's advice, when ``password`` scores below ``min_score``."""
    score, advice = strength(password, user_inputs)
    if score < min_score:
        raise errors.PasswordTooWeak(
            f"The password is too easy to guess (strength {score} of 4, at least {min_score} "
            "needed). " + " ".join(advice or ["Add another word or two that are not common."])
        )
