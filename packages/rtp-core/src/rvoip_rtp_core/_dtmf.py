"""RFC 4733 telephone-events: payload format, an encoder and a de-duplicating decoder."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from ._errors import RtpParseError
from ._packet import RtpPacket
from ._seq import ts_lt

__all__ = [
    "DTMF_EVENTS",
    "DtmfDecoder",
    "DtmfEncoder",
    "DtmfEnded",
    "DtmfNotification",
    "DtmfPacket",
    "DtmfStarted",
    "TelephoneEvent",
    "digit_for_event",
    "event_for_digit",
]

# RFC 4733 §3.2 Table 3 (0-15); 16 is hook flash from RFC 2833 ("!").
DTMF_EVENTS: Mapping[str, int] = MappingProxyType(
    {
        **{str(d): d for d in range(10)},
        "*": 10,
        "#": 11,
        "A": 12,
        "B": 13,
        "C": 14,
        "D": 15,
        "!": 16,
    }
)
_DIGITS = {code: digit for digit, code in DTMF_EVENTS.items()}
_EVENT = struct.Struct("!BBH")


def event_for_digit(digit: str) -> int:
    """The RFC 4733 event code of a DTMF digit ("0"-"9", "*", "#", "A"-"D", "!" flash)."""
    try:
        return DTMF_EVENTS[digit.upper()]
    except KeyError:
        raise ValueError(f"{digit!r} is not a DTMF digit") from None


def digit_for_event(event: int) -> str:
    """The DTMF digit of an event code, or ``"?"`` for codes outside Table 3."""
    return _DIGITS.get(event, "?")


@attrs.frozen
class TelephoneEvent:
    """The 4-byte telephone-event payload (RFC 4733 §2.3)."""

    event: int
    end: bool = False
    volume: int = 10  # 0..63, in -dBm0
    duration: int = 0  # timestamp units

    @classmethod
    def parse(cls, data: bytes) -> TelephoneEvent:
        """Parse the first event of a payload; raises only :class:`RtpParseError`."""
        if len(data) < 4:
            raise RtpParseError(f"telephone-event payload is {len(data)} bytes, expected 4")
        event, flags, duration = _EVENT.unpack_from(data)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def encode(self) -> bytes:
        """Serialize to 4 bytes (the R bit is sent as zero)."""
        if not 0 <= self.volume <= 63:
            raise ValueError(f"telephone-event volume {self.volume} out of 0..63")
        flags = (0x80 if self.end else 0) | self.volume
        return _EVENT.pack(self.event, flags, min(self.duration, 0xFFFF))

    def __bytes__(self) -> bytes:
        return self.encode()


@attrs.frozen
class DtmfPacket:
    """One packet of an event: payload, marker bit, and send time after the event start."""

    payload: bytes
    marker: bool
    offset: int  # timestamp units after the event start


@attrs.define(eq=False)
class DtmfEncoder:
    """Plans the packets of one event; every packet carries the event's start timestamp.

    RFC 4733 §2.5.1: the first packet has the marker bit; updates every
    ``packet_interval`` with growing duration; the final packet has the E bit and is
    sent ``end_repeats`` times (§2.5.1.4: three times).
    """

    packet_interval: int = 160
    volume: int = 10
    end_repeats: int = 3

    def packets(self, digit: str | int, duration: int) -> list[DtmfPacket]:
        """All packets of one event of ``duration`` timestamp units."""
        event = digit if isinstance(digit, int) else event_for_digit(digit)
        if duration <= 0 or self.packet_interval <= 0:
            raise ValueError("event duration and packet interval must be positive")
        # RFC 4733 §2.5.2.3: a duration over 0xFFFF would need segmentation.
        duration = min(duration, 0xFFFF)
        out = []
        k = 1
        while k * self.packet_interval < duration:
            tone = TelephoneEvent(event, False, self.volume, k * self.packet_interval)
            out.append(DtmfPacket(tone.encode(), k == 1, k * self.packet_interval))
            k += 1
        final = TelephoneEvent(event, True, self.volume, duration).encode()
        for r in range(self.end_repeats):
            out.append(DtmfPacket(final, k == 1 and r == 0, (k + r) * self.packet_interval))
        return out


@attrs.frozen
class DtmfStarted:
    """A new event began (first packet seen)."""

    digit: str
    event: int
    timestamp: int


@attrs.frozen
class DtmfEnded:
    """An event ended (E bit seen, or superseded by a newer event); reported once."""

    digit: str
    event: int
    timestamp: int
    duration: int
    volume: int


DtmfNotification = DtmfStarted | DtmfEnded


@attrs.define(eq=False)
class DtmfDecoder:
    """Turns telephone-event packets into one start and one end per event.

    RFC 4733 §2.5.2: an event is identified by its RTP timestamp; repeats of the
    final packet and late packets of an older event are ignored.
    """

    _timestamp: int | None = attrs.field(default=None, init=False)
    _event: int = attrs.field(default=0, init=False)
    _duration: int = attrs.field(default=0, init=False)
    _volume: int = attrs.field(default=0, init=False)
    _ended: bool = attrs.field(default=True, init=False)

    def _end(self) -> DtmfEnded:
        self._ended = True
        assert self._timestamp is not None
        return DtmfEnded(
            digit_for_event(self._event),
            self._event,
            self._timestamp,
            self._duration,
            self._volume,
        )

    def feed(self, timestamp: int, payload: bytes, marker: bool = False) -> list[DtmfNotification]:
        """Process one telephone-event payload; raises :class:`RtpParseError` if malformed."""
        tone = TelephoneEvent.parse(payload)
        out: list[DtmfNotification] = []
        if self._timestamp is not None and (
            timestamp == self._timestamp or ts_lt(timestamp, self._timestamp)
        ):
            if timestamp != self._timestamp or self._ended:
                return out  # a repeat of a finished event or a late packet of an older one
            self._duration = max(self._duration, tone.duration)
            self._volume = tone.volume
            if tone.end:
                out.append(self._end())
            return out
        if self._timestamp is not None and not self._ended:
            out.append(self._end())  # the previous event's end packets were lost
        self._timestamp = timestamp
        self._event = tone.event
        self._duration = tone.duration
        self._volume = tone.volume
        self._ended = False
        out.append(DtmfStarted(digit_for_event(tone.event), tone.event, timestamp))
        if tone.end:
            out.append(self._end())
        return out

    def feed_packet(self, packet: RtpPacket) -> list[DtmfNotification]:
        """Process an RTP packet carrying telephone-event."""
        return self.feed(packet.timestamp, packet.payload, packet.marker)

    def flush(self) -> list[DtmfNotification]:
        """End a pending event (e.g. when the stream stops without an E bit)."""
        if self._timestamp is not None and not self._ended:
            return [self._end()]
        return []
