"""The one helper for each small argument check (positive numbers), shared by every package.

Each check names the argument and the expectation in its message, e.g.
``step_px must be a positive integer, got 0``.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["positive_float", "positive_int"]


def positive_float(name: str, value: Any) -> float:
    """``value`` as a float; ValueError unless it is finite and > 0."""
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {number!r}")
    return number


def positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """``value`` as an int; ValueError unless it is a whole number >= ``minimum``.

    Booleans are rejected; integer-valued floats (``4.0``) are accepted.
    """
    expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    try:
        whole = not isinstance(value, bool) and int(value) == value
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or value < minimum:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return int(value)
