"""Small helpers for the reports' sentences."""

from __future__ import annotations

from collections.abc import Sequence


def series(items: Sequence[str], conjunction: str = "and") -> str:
    """``["a"]`` -> ``"a"``, ``["a", "b"]`` -> ``"a and b"``, ``["a", "b", "c"]`` -> ``"a, b and c"``."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"
