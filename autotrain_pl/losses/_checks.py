"""One-line checks of the numbers a preference loss reads from the config.

Every message names the field as users type it in YAML (``model.beta``) and says how to fix it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence

from autotrain_pl.errors import AutotrainError


def check_number(field: str, value: object, *, hint: str = "") -> float:
    """``value`` as a finite float; bools and non-numbers are refused (YAML ``yes`` is a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AutotrainError(f"{field}={value!r} must be a finite number{_tail(hint)}")
    return float(value)


def check_positive(field: str, value: object, *, hint: str = "") -> float:
    """``value`` as a float that is > 0."""
    number = check_number(field, value, hint=hint)
    if number <= 0:
        raise AutotrainError(f"{field}={value!r} must be > 0{_tail(hint)}")
    return number


def check_non_negative(field: str, value: object, *, hint: str = "") -> float:
    """``value`` as a float that is >= 0."""
    number = check_number(field, value, hint=hint)
    if number < 0:
        raise AutotrainError(f"{field}={value!r} must be >= 0{_tail(hint)}")
    return number


def check_choice(field: str, value: object, choices: Sequence[str], *, what: str) -> str:
    """``value`` if it is one of ``choices``; otherwise name the closest and list them all."""
    if isinstance(value, str) and value in choices:
        return value
    close = difflib.get_close_matches(str(value), choices, n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    raise AutotrainError(f"{field}={value!r} is not {what}; {guess}use one of {', '.join(choices)}")


def _tail(hint: str) -> str:
    return f"; {hint}" if hint else ""
