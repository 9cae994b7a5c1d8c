"""Token-list headers: Allow, Supported, Require, Proxy-Require, Unsupported.

Each header line is a comma-separated list; one instance is one element (``MULTI``).
"""

from __future__ import annotations

from typing import ClassVar, Self

import attrs

from .._errors import SipParseError
from .._lexer import is_token, normalize_lws

__all__ = ["Allow", "ProxyRequire", "Require", "Supported", "Unsupported"]


@attrs.frozen
class _TokenElement:
    NAME: ClassVar[str] = ""
    MULTI: ClassVar[bool] = True

    value: str

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse one token element (a method or an option-tag).

        Raises:
            SipParseError: not a single token.
        """
        if is_token(value):
            return cls(value)
        text = normalize_lws(value).strip(" \t")
        if not is_token(text):
            raise SipParseError(f"invalid {cls.NAME} element {value[:40]!r}")
        return cls(text)

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Allow(_TokenElement):
    """One method of an Allow header (RFC 3261 §20.5)."""

    NAME: ClassVar[str] = "Allow"

    @property
    def method(self) -> str:
        """The allowed method (same as ``value``)."""
        return self.value


@attrs.frozen
class Supported(_TokenElement):
    """One option-tag of a Supported header (RFC 3261 §20.37), e.g. ``100rel``."""

    NAME: ClassVar[str] = "Supported"


@attrs.frozen
class Require(_TokenElement):
    """One option-tag of a Require header (RFC 3261 §20.32)."""

    NAME: ClassVar[str] = "Require"


@attrs.frozen
class ProxyRequire(_TokenElement):
    """One option-tag of a Proxy-Require header (RFC 3261 §20.29)."""

    NAME: ClassVar[str] = "Proxy-Require"


@attrs.frozen
class Unsupported(_TokenElement):
    """One option-tag of an Unsupported header (RFC 3261 §20.40), sent with 420."""

    NAME: ClassVar[str] = "Unsupported"
