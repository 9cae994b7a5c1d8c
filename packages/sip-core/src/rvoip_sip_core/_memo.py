"""Bounded memo tables for values parsed from repeated wire text.

Immutable values (typed headers, URIs, SDP lines) recur across messages with the same
text; callers look them up inline (a dict ``get`` on the hot path) and store a miss
through :func:`remember`, which keeps the table bounded by clearing it when full — the
working set refills it at once, and no entry outlives a burst of unusual input.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(table: dict[K, V], key: K, value: V, limit: int) -> V:
    """Store ``value`` under ``key`` in a memo of at most ``limit`` entries; return it."""
    if len(table) >= limit:
        table.clear()
    table[key] = value
    return value
