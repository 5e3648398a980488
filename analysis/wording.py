"""Numbers in words for tables, summaries and figures: plurals that agree, no negative zero.

"1 seeds" or a bold "-0.0" in a paper table reads as a bug in the numbers; every message
of analysis formats counts and scores through these two functions.
"""

from __future__ import annotations

from collections.abc import Sequence


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``count(1, "seed")`` -> "1 seed", ``count(3, "seed")`` -> "3 seeds"."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def span(values: Sequence[int], noun: str, plural: str | None = None) -> str:
    """Sorted counts as one phrase: "5 seeds", "3-5 seeds", "1 seed"; "no seeds" if none."""
    if not values:
        return f"no {plural or noun + 's'}"
    if values[0] == values[-1]:
        return count(values[0], noun, plural)
    return f"{values[0]}-{values[-1]} {plural or noun + 's'}"


def fixed(value: float, digits: int = 1) -> str:
    """``value`` with ``digits`` decimals, never "-0.0" (-0.04 rounds to 0.0, not -0.0)."""
    return f"{round(float(value), digits) + 0.0:.{digits}f}"
