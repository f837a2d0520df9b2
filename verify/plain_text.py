"""Operator-typed text the directory keeps (names, units, matters, operators): one rule
for all of it. Lists print it tab-separated and terminals show it, so it is stripped,
not empty, within its limit, and holds no control or format character (a tab or newline
would split a list line; an escape would reach the terminal)."""

from __future__ import annotations

import unicodedata


def plain_text(what: str, value: str, limit: int, *, forbidden: str = "") -> str:
    """``value`` stripped; raises :class:`ValueError` naming ``what`` otherwise."""
    value = value.strip()
    if not value:
        raise ValueError(f"{what} is empty")
    if len(value) > limit:
        raise ValueError(f"{what} is longer than {limit} characters")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value):
        raise ValueError(f"{what} holds a control character")
    if any(c in forbidden for c in value):
        raise ValueError(f"{what} holds one of {' '.join(forbidden)}")
    return value
