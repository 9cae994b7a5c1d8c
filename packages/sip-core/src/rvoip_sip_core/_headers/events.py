"""Event-framework, transfer and informational headers.

Event and Subscription-State (RFC 6665), Replaces (RFC 3891), Reason (RFC 3326),
Warning (RFC 3261 §20.43), User-Agent and Server (RFC 3261 §20.41, §20.35).
"""

from __future__ import annotations

import re
from typing import ClassVar, Self

import attrs

from .._errors import SipParseError
from .._lexer import Params, normalize_lws, parse_params, quote, unquote
from ._common import CALLID_RE, WS, ParamsMixin, head_and_params, is_digits, lower

__all__ = ["Event", "Reason", "Replaces", "Server", "SubscriptionState", "UserAgent", "Warning"]

# RFC 3261 §20.43: warning-value = warn-code SP warn-agent SP warn-text; warn-code = 3DIGIT
_WARNING_RE = re.compile(
    WS + r"([0-9]{3})[ \t]+([^\s\"]+)[ \t]+(\"(?:[^\"\\]|\\[\s\S])*\")" + WS + r"\Z"
)


def _delta(v: str | None) -> int | None:
    return int(v) if v is not None and is_digits(v) and len(v) <= 10 else None


@attrs.frozen
class Event(ParamsMixin):
    """Event (RFC 6665 §8.2.1): event package (``refer``, ``dialog``, ...) and ``id``."""

    NAME: ClassVar[str] = "Event"
    MULTI: ClassVar[bool] = False

    package: str
    params: Params = ()

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse ``refer;id=93809824``.

        Raises:
            SipParseError: malformed value.
        """
        package, params = head_and_params(value, cls.NAME)
        return cls(package, params)

    @property
    def id(self) -> str | None:
        """The ``id`` parameter (distinguishes subscriptions in one dialog)."""
        return self.param("id")

    def __str__(self) -> str:
        return f"{self.package}{self._params_text()}"


@attrs.frozen
class SubscriptionState(ParamsMixin):
    """Subscription-State (RFC 6665 §8.2.3): ``active``/``pending``/``terminated`` + params."""

    NAME: ClassVar[str] = "Subscription-State"
    MULTI: ClassVar[bool] = False

    state: str = attrs.field(converter=lower)
    params: Params = ()

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse ``active;expires=600`` or ``terminated;reason=timeout;retry-after=30``.

        Raises:
            SipParseError: malformed value or non-numeric expires/retry-after.
        """
        state, params = head_and_params(value, cls.NAME)
        for k, v in params:
            if k.lower() in ("expires", "retry-after") and (v is None or not is_digits(v)):
                raise SipParseError(f"invalid Subscription-State {k} {v!r}")
        return cls(state, params)

    @property
    def expires(self) -> int | None:
        """The ``expires`` parameter in seconds."""
        return _delta(self.param("expires"))

    @property
    def reason(self) -> str | None:
        """The ``reason`` parameter (``timeout``, ``noresource``, ...), lower-cased."""
        v = self.param("reason")
        return None if v is None else v.lower()

    @property
    def retry_after(self) -> int | None:
        """The ``retry-after`` parameter in seconds."""
        return _delta(self.param("retry-after"))

    def __str__(self) -> str:
        return f"{self.state}{self._params_text()}"


@attrs.frozen
class Replaces(ParamsMixin):
    """Replaces (RFC 3891 §6.1): the dialog to replace (call-id, to-tag, from-tag)."""

    NAME: ClassVar[str] = "Replaces"
    MULTI: ClassVar[bool] = False

    call_id: str
    params: Params = ()

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse ``call-id;to-tag=a;from-tag=b[;early-only]``.

        Raises:
            SipParseError: malformed value or a missing to-tag/from-tag (RFC 3891 §6.1).
        """
        text = normalize_lws(value)
        call_id, semi, rest = text.partition(";")
        call_id = call_id.strip(" \t")
        if not CALLID_RE.match(call_id):
            raise SipParseError(f"invalid Replaces call-id {value[:60]!r}")
        params = parse_params(semi + rest) if semi else ()
        rep = cls(call_id, params)
        if rep.to_tag is None or rep.from_tag is None:
            raise SipParseError("Replaces needs to-tag and from-tag")
        return rep

    @property
    def to_tag(self) -> str | None:
        """The ``to-tag`` parameter."""
        return self.param("to-tag")

    @property
    def from_tag(self) -> str | None:
        """The ``from-tag`` parameter."""
        return self.param("from-tag")

    @property
    def early_only(self) -> bool:
        """True if the ``early-only`` flag is present."""
        return self.has_param("early-only")

    def __str__(self) -> str:
        return f"{self.call_id}{self._params_text()}"


@attrs.frozen
class Reason(ParamsMixin):
    """One Reason element (RFC 3326 §2): protocol (``SIP``, ``Q.850``), ``cause``, ``text``."""

    NAME: ClassVar[str] = "Reason"
    MULTI: ClassVar[bool] = True

    protocol: str
    params: Params = ()

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse ``SIP;cause=200;text="Call completed elsewhere"``.

        Raises:
            SipParseError: malformed value or a non-numeric cause.
        """
        protocol, params = head_and_params(value, cls.NAME)
        for k, v in params:
            if k.lower() == "cause" and (v is None or not is_digits(v)):
                raise SipParseError(f"invalid Reason cause {v!r}")
        return cls(protocol, params)

    @property
    def cause(self) -> int | None:
        """The ``cause`` parameter as an int."""
        return _delta(self.param("cause"))

    @property
    def text(self) -> str | None:
        """The ``text`` parameter, unquoted."""
        v = self.param("text")
        return None if v is None else unquote(v)

    def __str__(self) -> str:
        return f"{self.protocol}{self._params_text()}"


@attrs.frozen
class Warning:
    """One Warning element (RFC 3261 §20.43): 3-digit code, agent and quoted text."""

    NAME: ClassVar[str] = "Warning"
    MULTI: ClassVar[bool] = True

    code: int
    agent: str
    text: str

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse ``307 isi.edu "Session parameter 'foo' not understood"``.

        Raises:
            SipParseError: malformed value (e.g. a code that is not 3 digits).
        """
        m = _WARNING_RE.match(normalize_lws(value))
        if m is None:
            raise SipParseError(f"malformed Warning {value[:60]!r}")
        return cls(int(m.group(1)), m.group(2), unquote(m.group(3)))

    def __str__(self) -> str:
        return f"{self.code:03d} {self.agent} {quote(self.text)}"


@attrs.frozen
class _ProductText:
    NAME: ClassVar[str] = ""
    MULTI: ClassVar[bool] = False

    value: str

    @classmethod
    def parse(cls, value: str) -> Self:
        """Keep the product/comment text (LWS collapsed at folds).

        Raises:
            SipParseError: empty value or control characters.
        """
        text = normalize_lws(value).strip(" \t")
        if not text or any(c < " " and c != "\t" for c in text):
            raise SipParseError(f"invalid {cls.NAME} value {value[:60]!r}")
        return cls(text)

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class UserAgent(_ProductText):
    """User-Agent (RFC 3261 §20.41): product tokens and comments, kept as text."""

    NAME: ClassVar[str] = "User-Agent"


@attrs.frozen
class Server(_ProductText):
    """Server (RFC 3261 §20.35): product tokens and comments, kept as text."""

    NAME: ClassVar[str] = "Server"
