"""The ``SessionError`` hierarchy: every failure of the call API is one of these."""

from __future__ import annotations


class SessionError(Exception):
    """Base of every error raised by rvoip_session_core.

    Attributes:
        session_id: the call the error concerns, when there is one.
    """

    def __init__(self, message: str, *, session_id: str | None = None) -> None:
        if session_id is not None and session_id not in message:
            message = f"call {session_id}: {message}"
        super().__init__(message)
        self.session_id = session_id


class CallFailed(SessionError):  # noqa: N818 (the seed's name)
    """The call could not be set up: the peer answered with a final error status.

    Attributes:
        status: the SIP status code (e.g. 486, 603, 487 when cancelled, 408 on no answer).
        reason: the reason phrase.
    """

    def __init__(self, status: int, reason: str = "", *, session_id: str | None = None) -> None:
        text = f"call failed with {status} {reason}".rstrip()
        super().__init__(text, session_id=session_id)
        self.status = status
        self.reason = reason


class CallCancelled(CallFailed):
    """The call was cancelled before it was answered (487 Request Terminated)."""

    def __init__(
        self, reason: str = "Request Terminated", *, session_id: str | None = None
    ) -> None:
        super().__init__(487, reason, session_id=session_id)


class RequestFailed(SessionError):  # noqa: N818 (named like CallFailed)
    """A request of its own (MESSAGE …) got a final error status.

    Attributes:
        method: the request's method.
        status: the SIP status code (e.g. 404, 415, 486; 408 when nothing answered).
        reason: the reason phrase.
    """

    def __init__(self, method: str, status: int, reason: str = "") -> None:
        super().__init__(f"{method} failed with {status} {reason}".rstrip())
        self.method = method
        self.status = status
        self.reason = reason


class Timeout(SessionError, TimeoutError):  # noqa: N818 (the seed's name)
    """An operation did not complete in time (e.g. no answer within the wait)."""


class InvalidState(SessionError):  # noqa: N818 (the seed's name)
    """The operation does not fit the call's current state (e.g. hold before answer)."""


class SessionNotFound(SessionError, LookupError):  # noqa: N818 (the seed's name)
    """No call with that id exists (never did, or already ended and was released)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"no such call: {session_id}", session_id=session_id)


class BridgeNotFound(SessionError, LookupError):  # noqa: N818 (the seed's name)
    """No bridge with that id exists."""


class TransportError(SessionError):
    """Sending or receiving on the network failed (bind, unreachable peer, ...)."""


class MediaError(SessionError):
    """Media could not be negotiated or controlled (no common codec, bad audio source)."""


class ConfigurationError(SessionError, ValueError):
    """The builder was given settings that cannot work together."""
