"""`Headers`: the raw, ordered header lines of a message.

Each entry keeps the line exactly as received, split at its first ':' (name as
spelled on the wire, with any LWS before the colon; value with its LWS), so a
header that nobody touched is written back byte-identical. Lookups are
case-insensitive and understand compact forms (``i`` is ``Call-ID``). A folded
header (RFC 3261 §7.3.1 continuation lines) is kept unfolded: its continuation
lines are joined to the first with one SP, which is equivalent on the wire.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from ._errors import SipUsageError
from ._memo import remember_name
from ._names import header_key

__all__ = ["Headers"]

# One line split at its first ':': (name with trailing LWS, ":", value with LWS).
_Part = tuple[str, str, str]

# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_LWS = " \t"


# Header names already checked to be tokens, as given -> stripped (bounded memo).
_GOOD_NAMES: dict[str, str] = {}


def _make_part(name: str, value: object) -> _Part:
    """Build one header line from a name and a value, refusing header injection."""
    text = value if isinstance(value, str) else str(value)
    clean = _GOOD_NAMES.get(name)
    if clean is None:
        clean = name.strip()
        if not _TOKEN.fullmatch(clean):
            raise SipUsageError(f"invalid header name {clean!r}")
        remember_name(_GOOD_NAMES, name, clean, 1024)
    if "\r" in text or "\n" in text:
        raise SipUsageError(f"header value of {clean} contains CR or LF")
    return (clean, ":", " " + text.strip(_LWS))


class Headers:
    """Immutable ordered header lines with case-insensitive, compact-aware lookup.

    Iterating gives ``(name_as_on_wire, value)`` pairs in wire order (LWS around
    the colon and the value removed). Derived copies (:meth:`with_`,
    :meth:`append`, :meth:`prepend`, :meth:`without`) leave this object
    untouched. Equality compares the names and values.
    """

    __slots__ = ("_items", "_keys", "_parts", "_text")

    _parts: Sequence[_Part]
    _keys: Sequence[str]
    _text: str | None
    _items: tuple[tuple[str, str], ...] | None

    def __init__(self, items: Iterable[tuple[str, object]] = ()) -> None:
        """Build headers from ``(name, value)`` pairs (values turned into text with str()).

        Raises:
            SipUsageError: a name is not a token or a value contains CR/LF.
        """
        parts = [_make_part(name, value) for name, value in items]
        self._parts = parts
        self._keys = [header_key(part[0]) for part in parts]
        self._text = None
        self._items = None

    @classmethod
    def _from_parts(
        cls, parts: Sequence[_Part], keys: Sequence[str], text: str | None = None
    ) -> Headers:
        """Wrap already-split lines (the parser's fast path); ``text`` is their CRLF join."""
        self = cls.__new__(cls)
        self._parts = parts
        self._keys = keys
        self._text = text
        self._items = None
        return self

    def _find(self, key: str) -> list[int]:
        # hot path: membership first (C scan), no ValueError raised for a missing header.
        keys = self._keys
        if key not in keys:
            return []
        return [pos for pos, k in enumerate(keys) if k == key]

    def _first(self, key: str) -> str | None:
        """Value of the first line whose lookup key is ``key`` (already a header_key)."""
        keys = self._keys
        if key not in keys:
            return None
        return self._parts[keys.index(key)][2].strip(_LWS)

    def _values(self, key: str) -> list[str]:
        """Values of the lines whose lookup key is ``key`` (already a header_key)."""
        keys = self._keys
        count = keys.count(key)
        if count == 1:
            return [self._parts[keys.index(key)][2].strip(_LWS)]
        if not count:
            return []
        parts = self._parts
        return [parts[pos][2].strip(_LWS) for pos in self._find(key)]

    def positions(self, name: str) -> list[int]:
        """Return the indices of the lines carrying ``name`` (any case, compact or long)."""
        return self._find(header_key(name))

    def get(self, name: str) -> str | None:
        """Return the value of the first line named ``name``, or None."""
        return self._first(header_key(name))

    def get_all(self, name: str) -> list[str]:
        """Return the values of every line named ``name`` (lines, not comma elements)."""
        parts = self._parts
        return [parts[pos][2].strip(_LWS) for pos in self._find(header_key(name))]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and header_key(name) in self._keys

    def _pairs(self) -> tuple[tuple[str, str], ...]:
        """The ``(name, value)`` pairs, LWS removed; built once (the lines never change)."""
        items = self._items
        if items is None:
            parts = self._parts
            items = self._items = tuple([(p[0].rstrip(_LWS), p[2].strip(_LWS)) for p in parts])
        return items

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """Every line as a ``(name, value)`` pair of strings (LWS removed), in wire order.

        The same tuple each time (built once; the lines never change): a caller that keeps
        the header lines (e.g. a call's record of its INVITE) shares it instead of copying.
        """
        return self._items if self._items is not None else self._pairs()

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs())

    def __len__(self) -> int:
        return len(self._parts)

    def __getitem__(self, index: int) -> tuple[str, str]:
        return self._pairs()[index]

    def __bool__(self) -> bool:
        return bool(self._parts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._pairs() == other._pairs()

    def __hash__(self) -> int:
        return hash(self._pairs())

    def __repr__(self) -> str:
        return f"Headers({list(self._pairs())!r})"

    @property
    def text(self) -> str:
        """The header lines as written on the wire, joined by CRLF (no final CRLF)."""
        text = self._text
        if text is None:
            text = self._text = "\r\n".join([name + ":" + value for name, _, value in self._parts])
        return text

    def with_(self, name: str, value: object) -> Headers:
        """Return a copy where ``name`` has the single value ``value``.

        The new line takes the position of the first existing one (the others are
        dropped); when there is none it is appended.
        """
        new = _make_part(name, value)
        key = header_key(new[0])
        parts: list[_Part] = []
        keys: list[str] = []
        placed = False
        for part, k in zip(self._parts, self._keys, strict=True):
            if k == key:
                if placed:
                    continue
                part = new
                placed = True
            parts.append(part)
            keys.append(k)
        if not placed:
            parts.append(new)
            keys.append(key)
        return Headers._from_parts(parts, keys)

    def append(self, name: str, value: object) -> Headers:
        """Return a copy with a line added after all others."""
        new = _make_part(name, value)
        return Headers._from_parts([*self._parts, new], [*self._keys, header_key(new[0])])

    def prepend(self, name: str, value: object) -> Headers:
        """Return a copy with a line added before all others (e.g. a new top Via)."""
        new = _make_part(name, value)
        return Headers._from_parts([new, *self._parts], [header_key(new[0]), *self._keys])

    def without(self, name: str) -> Headers:
        """Return a copy without any line named ``name``."""
        key = header_key(name)
        if key not in self._keys:
            return self
        kept = [(p, k) for p, k in zip(self._parts, self._keys, strict=True) if k != key]
        return Headers._from_parts([p for p, _ in kept], [k for _, k in kept])
