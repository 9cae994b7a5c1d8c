"""Helpers for tests, examples and the demo.

Loopback endpoints, SIP traces, tone meters, and whole calls between coordinators in
virtual time (``VirtualCalls``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio
import attrs

from rvoip_media_core import detect_dtmf, detect_tone
from rvoip_session_core._config import SessionManagerBuilder
from rvoip_session_core._coordinator import SessionCoordinator
from rvoip_session_core._events import EventSubscription
from rvoip_session_core._handlers import AutoAnswerHandler, CallHandler
from rvoip_session_core._ladder import LadderEntry, render_ladder
from rvoip_session_core._virtual import (
    MediaRecord,
    MemoryMedia,
    MemoryRtp,
    VirtualCalls,
    virtual_time_backend,
)
from rvoip_sip_core import Request, Response, SipParseError, parse_message

__all__ = [
    "MediaRecord",
    "MemoryMedia",
    "MemoryRtp",
    "SipTrace",
    "TracedMessage",
    "VirtualCalls",
    "count_tone_frames",
    "listen_for_dtmf_tones",
    "loopback_builder",
    "next_event",
    "released",
    "uri_of",
    "virtual_time_backend",
    "wait_until",
]


def loopback_builder(
    user: str, handler: CallHandler | None = None, *, t1: float = 0.1
) -> SessionManagerBuilder:
    """A builder for an endpoint on 127.0.0.1 with a free port and short SIP timers."""
    return (
        SessionManagerBuilder()
        .with_local_address(f"sip:{user}@127.0.0.1")
        .with_sip_port(0)
        .with_handler(handler if handler is not None else AutoAnswerHandler())
        .with_sip_timers(t1, max(t1 * 8, 0.4))
        .with_quality_interval(0.5)
    )


def released(coordinator: SessionCoordinator) -> bool:
    """True when no call, dialog, pending request, media stream or RTP port is left."""
    media = coordinator.media_manager
    return (
        coordinator.registry.is_empty()
        and not media.engine.streams
        and not media.ports_in_use
        and coordinator.endpoint.dialog_count() == 0
    )


def uri_of(coordinator: SessionCoordinator, user: str) -> str:
    """``sip:user@host:port`` of a started coordinator."""
    host, port = coordinator.local_sip_address
    return f"sip:{user}@{host}:{port}"


@attrs.frozen
class TracedMessage:
    """One SIP message sent by a traced endpoint."""

    time: float
    source: str
    target: tuple[str, int]
    message: Request | Response

    @property
    def label(self) -> str:
        """``INVITE`` / ``200 OK (INVITE)``-style short description (with `(SDP)`)."""
        msg = self.message
        sdp = ""
        if msg.body and b"v=0" in msg.body[:8]:
            held = [
                d for d in ("sendonly", "recvonly", "inactive") if f"a={d}".encode() in msg.body
            ]
            sdp = f" (SDP {held[0]})" if held else " (SDP)"
        if isinstance(msg, Request):
            return f"{msg.method}{sdp}"
        return f"{msg.status} {msg.reason} ({msg.cseq.method}){sdp}"

    @property
    def kind(self) -> str:
        """The method of a request, or ``<status>/<method>`` of a response."""
        msg = self.message
        if isinstance(msg, Request):
            return msg.method
        return f"{msg.status}/{msg.cseq.method}"


@attrs.define(eq=False)
class SipTrace:
    """Records the SIP messages that traced coordinators send, for assertions and ladders."""

    messages: list[TracedMessage] = attrs.field(factory=list)
    names: dict[tuple[str, int], str] = attrs.field(factory=dict)
    order: list[str] = attrs.field(factory=list)

    def attach(self, coordinator: SessionCoordinator, name: str) -> None:
        """Trace what ``coordinator`` sends, naming it ``name`` in ladders."""
        self.names[coordinator.local_sip_address] = name
        self.order.append(name)

        def tap(direction: str, data: bytes, target: tuple[str, int]) -> None:
            try:
                message = parse_message(data)
            except SipParseError:
                return
            self.messages.append(TracedMessage(time.monotonic(), name, target, message))

        coordinator.message_tap = tap

    def kinds(self, source: str | None = None) -> list[str]:
        """``kind`` of each message (of one source), in order."""
        return [m.kind for m in self.messages if source is None or m.source == source]

    def requests(self, method: str) -> list[Request]:
        """Every traced request of ``method``."""
        return [
            m.message
            for m in self.messages
            if isinstance(m.message, Request) and m.message.method == method
        ]

    def responses(self, status: int) -> list[Response]:
        """Every traced response with ``status``."""
        return [
            m.message
            for m in self.messages
            if isinstance(m.message, Response) and m.message.status == status
        ]

    def ladder(self) -> str:
        """The trace as a text ladder diagram."""
        entries = [
            LadderEntry(
                m.time, m.source, self.names.get(m.target, f"{m.target[0]}:{m.target[1]}"), m.label
            )
            for m in self.messages
        ]
        return render_ladder(self.order, entries, width=30)


async def wait_until(
    predicate: Callable[[], bool] | Callable[[], Awaitable[bool]],
    timeout: float = 5.0,
    interval: float = 0.01,
) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; returns its last value."""
    with anyio.move_on_after(timeout):
        while True:
            result = predicate()
            value = await result if isinstance(result, Awaitable) else result
            if value:
                return True
            await anyio.sleep(interval)
    return False


async def next_event(
    subscription: EventSubscription[object], kind: type, timeout: float = 5.0
) -> object:
    """The next event of class ``kind`` from a subscription.

    Raises:
        TimeoutError: none arrived within ``timeout``.
    """
    with anyio.fail_after(timeout):
        async for event in subscription:
            if isinstance(event, kind):
                return event
    raise TimeoutError(f"the subscription ended before a {kind.__name__}")


async def count_tone_frames(
    coordinator: SessionCoordinator, session_id: str, frequency: float, seconds: float
) -> tuple[int, int]:
    """(frames with the tone, frames seen) of a call's received audio over ``seconds``."""
    hits = total = 0
    subscription = await coordinator.subscribe_to_audio_frames(session_id)
    with anyio.move_on_after(seconds):
        async for frame in subscription:
            total += 1
            if detect_tone(frame.samples, frequency, frame.sample_rate):
                hits += 1
    subscription.close()
    return hits, total


async def listen_for_dtmf_tones(
    coordinator: SessionCoordinator, session_id: str, seconds: float
) -> str:
    """Digits heard as DTMF tones (in-band) in a call's received audio over ``seconds``."""
    digits: list[str] = []
    last: str | None = None
    subscription = await coordinator.subscribe_to_audio_frames(session_id)
    with anyio.move_on_after(seconds):
        async for frame in subscription:
            key = detect_dtmf(frame.samples, frame.sample_rate)
            if key is not None and key != last:
                digits.append(key)
            last = key
    subscription.close()
    return "".join(digits)
