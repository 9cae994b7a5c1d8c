"""Bounded memo tables for values parsed from repeated wire text.

Immutable values (typed headers, URIs, SDP lines) and checked names (header names,
methods) recur across messages with the same text; callers look them up inline (a dict
``get`` on the hot path) and store a miss through :func:`remember`, which keeps the table
bounded twice over:

* by count: a full table is cleared before the new entry goes in — the working set
  refills it at once, and no entry outlives a burst of unusual input (a table that
  merely stopped filling would leave the good names of later traffic out for ever);
* by entry size: text longer than the table's ``max_chars`` is not stored at all (the
  caller's parse result is still returned), so attacker-chosen names and values of up
  to the message size limit cannot pin ``count x 256 KiB`` of memory.

Settings (module globals, read at every store, so a deployment may change them):
:data:`MAX_VALUE_CHARS` for header values, URIs and SDP lines, :data:`MAX_NAME_CHARS`
for header names and methods. The tables' counts are set where they are declared
(2,048 typed values and URIs, 4,096 names and methods, 512 SDP c=/t= lines, 1,024
rtpmaps). With the defaults every memo together holds a few MiB at most.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["MAX_NAME_CHARS", "MAX_VALUE_CHARS", "remember", "remember_name"]

K = TypeVar("K")
V = TypeVar("V")

MAX_VALUE_CHARS = 512
"""Longest header value, URI or SDP line text a memo stores (longer ones are re-parsed)."""

MAX_NAME_CHARS = 64
"""Longest header name or method a memo stores (the registered ones are under 32)."""


def remember(table: dict[K, V], key: K, value: V, limit: int, size: int = 0) -> V:
    """Store ``value`` under ``key`` in a memo of at most ``limit`` entries; return it.

    Args:
        table: the memo.
        key: what the value is looked up by.
        value: the value (returned whether stored or not).
        limit: most entries the table holds; a full table is cleared first.
        size: length of the text behind ``key``; above :data:`MAX_VALUE_CHARS` the entry
            is not stored.

    Returns:
        ``value``.
    """
    if size > MAX_VALUE_CHARS:
        return value
    if len(table) >= limit:
        table.clear()
    table[key] = value
    return value


def remember_name(table: dict[str, V], name: str, value: V, limit: int) -> V:
    """:func:`remember` for a checked name: names above :data:`MAX_NAME_CHARS` are not stored."""
    if len(name) > MAX_NAME_CHARS:
        return value
    if len(table) >= limit:
        table.clear()
    table[name] = value
    return value
