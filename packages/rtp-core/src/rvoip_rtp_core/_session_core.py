"""The sans-IO core of an RTP session: packetisation, statistics, RTCP scheduling."""

from __future__ import annotations

import random
import struct
from typing import Any

import attrs

from ._errors import RtpParseError
from ._latch import SourceLatch
from ._packet import RtpPacket
from ._rtcp import (
    RTCP_BYE,
    RTCP_RR,
    RTCP_SDES,
    RTCP_SR,
    SDES_CNAME,
    ReportBlock,
    RtcpBye,
    RtcpPacket,
    RtcpReceiverReport,
    RtcpSenderReport,
    parse_rtcp,
)
from ._seq import ntp_from_time
from ._stats import (
    RTCP_MIN_TIME,
    RemoteReport,
    SessionStatistics,
    SourceStatistics,
    rtcp_interval,
    rtt_from_report,
)

__all__ = ["RtpSessionCore"]

_HEADER = struct.Struct("!BBHII")
_HEADER_SSRC = struct.Struct("!BBHI")  # an RTCP header and one SSRC (RR, SDES, BYE)
_SR_HEAD = struct.Struct("!BBHIQIII")  # RFC 3550 §6.4.1: header and sender info
_UDP_IP_OVERHEAD = 28  # RFC 3550 §6.2: the average RTCP size includes lower-layer headers
_MAX_SOURCES = 32
_U32 = struct.Struct("!I")


@attrs.define(eq=False)
class RtpSessionCore:
    """One RTP session's protocol state, fed bytes and ``now`` (seconds), never a socket.

    The driver calls :meth:`build_rtp` to send, :meth:`receive_rtp` /
    :meth:`receive_rtcp` with datagrams and their source address, and
    :meth:`handle_timer` at :meth:`get_timer`. ``latch`` decides which source is
    accepted and where to send (see :class:`SourceLatch`).

    ``rng`` draws the SSRC, the initial sequence number and timestamp and the RTCP
    interval randomisation: the OS CSPRNG by default (RFC 3550 §5.1 wants them
    unpredictable; a seeded generator only when a test injects one). It is used per
    session and per RTCP report, never per packet.
    """

    rng: random.Random = attrs.field(factory=random.SystemRandom)
    clock_rate: int = 8000
    payload_type: int = 0
    cname: str | None = None
    session_bandwidth: float = 64000.0  # bits/s; RTCP gets 5 % (RFC 3550 §6.2)
    rtcp_min_time: float = RTCP_MIN_TIME
    ssrc: int = attrs.field(default=0)
    latch: SourceLatch = attrs.field(factory=SourceLatch)
    packets_sent: int = attrs.field(default=0, init=False)
    octets_sent: int = attrs.field(default=0, init=False)
    rtcp_sent: int = attrs.field(default=0, init=False)
    rtcp_received: int = attrs.field(default=0, init=False)
    invalid_packets: int = attrs.field(default=0, init=False)
    ssrc_collisions: int = attrs.field(default=0, init=False)
    receive_queue_drops: int = attrs.field(default=0, init=False)
    srtp_failures: int = attrs.field(default=0, init=False)
    last_timestamp: int | None = attrs.field(default=None, init=False)
    remote_report: RemoteReport | None = attrs.field(default=None, init=False)
    rtt: float | None = attrs.field(default=None, init=False)
    last_rtp_received: float | None = attrs.field(default=None, init=False)
    last_rtcp_received: float | None = attrs.field(default=None, init=False)
    _seq: int = attrs.field(default=0, init=False)
    _ts_offset: int = attrs.field(default=0, init=False)
    _last_rtp_ts: int = attrs.field(default=0, init=False)
    _last_send: float = attrs.field(default=0.0, init=False)
    _we_sent: bool = attrs.field(default=False, init=False)
    _sent_before_last: bool = attrs.field(default=False, init=False)
    _sources: dict[int, SourceStatistics] = attrs.field(factory=dict, init=False)
    _active_senders: set[int] = attrs.field(factory=set, init=False)
    _primary: int | None = attrs.field(default=None, init=False)
    _next_rtcp: float | None = attrs.field(default=None, init=False)
    _last_rtcp: float = attrs.field(default=0.0, init=False)
    _initial: bool = attrs.field(default=True, init=False)
    _avg_rtcp_size: float = attrs.field(default=128.0, init=False)
    _pending_bye: list[int] = attrs.field(factory=list, init=False)
    _sdes: bytes = attrs.field(default=b"", init=False)
    _sdes_ssrc: int = attrs.field(default=0, init=False)
    _first_uniform: float = attrs.field(default=-1.0, init=False)

    def __attrs_post_init__(self) -> None:
        # One draw for the session (one urandom call with the default CSPRNG): SSRC,
        # CNAME, RFC 3550 §5.1's random initial sequence number and timestamp, and the
        # randomisation of the first RTCP interval (§6.3.1; hot path: a short call sends
        # only that one report, so this spares it a second urandom call). Independent
        # bit ranges of one uniform draw are independent uniform values.
        bits = self.rng.getrandbits(160)
        if not self.ssrc:
            self.ssrc = (bits & 0xFFFFFFFF) or 1
        if self.cname is None:
            self.cname = f"rvoip-{(bits >> 32) & 0xFFFFFFFFFFFF:012x}"
        self._seq = (bits >> 80) & 0xFFFF
        self._ts_offset = (bits >> 96) & 0xFFFFFFFF
        self._first_uniform = (bits >> 128) / 4294967296.0  # in [0, 1), 32 bits

    def _uniform(self) -> float:
        """A uniform float in [0, 1) for RTCP timing: the session draw's, then the RNG's."""
        value = self._first_uniform
        if value < 0.0:
            return self.rng.random()
        self._first_uniform = -1.0
        return value

    # -- sending -----------------------------------------------------------------------

    @property
    def next_sequence_number(self) -> int:
        """The sequence number the next built packet will carry."""
        return self._seq

    def build_rtp(
        self,
        payload: bytes,
        timestamp: int,
        now: float,
        marker: bool = False,
        payload_type: int | None = None,
    ) -> bytes:
        """Build the next RTP packet.

        Args:
            payload: the encoded media.
            timestamp: media time in clock units since the stream started; the random
                initial offset of RFC 3550 §5.1 is added here.
            now: current time in seconds (maps RTP time to NTP time in SRs).
            marker: the RTP marker bit.
            payload_type: overrides the session's payload type (e.g. telephone-event).
        """
        seq = self._seq
        self._seq = (seq + 1) & 0xFFFF
        ts = (timestamp + self._ts_offset) & 0xFFFFFFFF
        pt = self.payload_type if payload_type is None else payload_type
        self.last_timestamp = timestamp
        self._last_rtp_ts = ts
        self._last_send = now
        self.packets_sent += 1
        self.octets_sent += len(payload)
        self._we_sent = True
        return _HEADER.pack(0x80, pt | 0x80 if marker else pt, seq, ts, self.ssrc) + payload

    # -- receiving ---------------------------------------------------------------------

    def _new_ssrc_after_collision(self) -> None:
        # RFC 3550 §8.2: on a collision send a BYE for the old SSRC and pick a new one.
        self.ssrc_collisions += 1
        self._pending_bye.append(self.ssrc)
        old = self.ssrc
        while self.ssrc == old or self.ssrc in self._sources or not self.ssrc:
            self.ssrc = self.rng.getrandbits(32)

    def _source(self, ssrc: int) -> SourceStatistics:
        src = self._sources.get(ssrc)
        if src is None:
            if len(self._sources) >= _MAX_SOURCES:
                victim = next(s for s in self._sources if s != self._primary)
                del self._sources[victim]
            src = self._sources[ssrc] = SourceStatistics(ssrc, self.clock_rate)
        return src

    def receive_rtp(self, data: bytes, now: float, source: Any = None) -> RtpPacket | None:
        """Account a received RTP datagram; returns the packet to deliver, or None.

        None means unparseable, from a source address the latch refuses, or rejected by
        RFC 3550 A.1 validation (a large jump). Packets of a source on (RFC 3550 A.1)
        probation are delivered but not yet counted.

        Args:
            data: the datagram (after SRTP unprotection).
            now: arrival time in seconds (monotonic or wall clock, consistently).
            source: the address it came from, as ``recvfrom`` gives it; None skips the
                source check (a driver that filtered already, or a test).
        """
        try:
            packet = RtpPacket.parse(data)
        except RtpParseError:
            self.invalid_packets += 1
            return None
        ssrc = packet.ssrc
        # Before the collision check and the statistics: a refused source changes nothing.
        if source is not None and not self.latch.accept_rtp(
            source, ssrc, packet.sequence_number, now
        ):
            return None
        self.last_rtp_received = now
        if ssrc == self.ssrc:
            self._new_ssrc_after_collision()
        src = self._sources.get(ssrc) or self._source(ssrc)
        valid = src.update(packet.sequence_number, packet.timestamp, now, len(packet.payload))
        if not valid and not src.probation:
            return None
        self._primary = ssrc
        if valid:
            self._active_senders.add(ssrc)
        return packet

    def _process_blocks(self, reports: tuple[ReportBlock, ...], now: float) -> None:
        for block in reports:
            if block.ssrc != self.ssrc:
                continue
            self.remote_report = RemoteReport(
                fraction_lost=block.fraction_lost / 256.0,
                packets_lost=block.cumulative_lost,
                jitter=float(block.jitter),
                jitter_seconds=block.jitter / self.clock_rate,
                extended_highest_sequence=block.highest_sequence,
                received_at=now,
            )
            rtt = rtt_from_report(block, now)
            if rtt is not None:
                self.rtt = rtt

    def receive_rtcp(self, data: bytes, now: float, source: Any = None) -> list[RtcpPacket]:
        """Account a received (compound) RTCP datagram; returns its packets.

        [] means unparseable or from a source address the latch refuses.

        Args:
            data: the datagram (after SRTCP unprotection).
            now: arrival time in seconds.
            source: the address it came from, as ``recvfrom`` gives it; None skips the
                source check.
        """
        try:
            packets = parse_rtcp(data)
        except RtpParseError:
            self.invalid_packets += 1
            return []
        if source is not None and not self.latch.accept_rtcp(source, now):
            return []
        self.last_rtcp_received = now
        self.rtcp_received += 1
        # RFC 3550 A.7: avg_rtcp_size = 1/16 * packet_size + 15/16 * avg_rtcp_size.
        self._avg_rtcp_size += (len(data) + _UDP_IP_OVERHEAD - self._avg_rtcp_size) / 16.0
        for p in packets:
            if isinstance(p, RtcpSenderReport):
                if p.ssrc == self.ssrc:
                    self._new_ssrc_after_collision()
                self._source(p.ssrc).on_sender_report(p.ntp_timestamp, now)
                self._process_blocks(p.reports, now)
            elif isinstance(p, RtcpReceiverReport):
                if p.ssrc == self.ssrc:
                    self._new_ssrc_after_collision()
                self._process_blocks(p.reports, now)
            elif isinstance(p, RtcpBye):
                for s in p.sources:
                    self._active_senders.discard(s)
        return packets

    def last_activity(self) -> float | None:
        """When the last accepted RTP or RTCP packet arrived (None if none yet).

        For a media inactivity timeout: the session layer ends a call when ``now``
        minus this exceeds its limit. On hold only RTCP may flow, which this counts;
        :attr:`last_rtp_received` and :attr:`last_rtcp_received` are the two parts.
        No timer runs here: the caller compares with its own clock.
        """
        rtp = self.last_rtp_received
        rtcp = self.last_rtcp_received
        if rtp is None:
            return rtcp
        return rtp if rtcp is None or rtp >= rtcp else rtcp

    def source(self, ssrc: int) -> SourceStatistics | None:
        """The receiver statistics of one remote source, if seen."""
        return self._sources.get(ssrc)

    @property
    def primary_source(self) -> SourceStatistics | None:
        """The remote source whose packet was delivered last (possibly still on probation)."""
        return None if self._primary is None else self._sources.get(self._primary)

    # -- RTCP --------------------------------------------------------------------------

    def _interval(self, initial: bool) -> float:
        sources = self._sources
        members = 1 + sum(1 for s in sources.values() if s.valid) if sources else 1
        we_sent = self._is_sender()
        senders = len(self._active_senders) + (1 if we_sent else 0)
        return rtcp_interval(
            members,
            senders,
            0.05 * self.session_bandwidth / 8.0,
            we_sent,
            self._avg_rtcp_size,
            initial,
            self._uniform,
            self.rtcp_min_time,
        )

    def _is_sender(self) -> bool:
        # RFC 3550 §6.4: an SR if we sent RTP since the last report or the one before.
        return self._we_sent or self._sent_before_last

    def start(self, now: float) -> None:
        """Schedule the first RTCP report (RFC 3550 §6.2: half the minimum interval)."""
        if self._next_rtcp is None:
            self._last_rtcp = now
            self._next_rtcp = now + self._interval(initial=True)

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` next has work (None before :meth:`start`)."""
        return self._next_rtcp

    def handle_timer(self, now: float) -> bytes | None:
        """Return a compound RTCP report if one is due at ``now``, and reschedule."""
        if self._next_rtcp is None or now < self._next_rtcp:
            return None
        # RFC 3550 A.7 OnExpire / §6.3.6: timer reconsideration. Recompute the interval
        # with the current membership; send only if it has elapsed since the last
        # report, else re-arm the timer for the new deadline.
        interval = self._interval(initial=self._initial)
        if self._last_rtcp + interval > now:
            self._next_rtcp = self._last_rtcp + interval
            return None
        data = self.build_report(now)
        self._last_rtcp = now
        self._next_rtcp = now + self._interval(initial=False)
        return data

    def _sdes_cname(self) -> bytes:
        # The SDES packet changes only with the SSRC: encode it once (every report and the
        # BYE at the end of every call carry it).
        ssrc = self.ssrc
        if self._sdes_ssrc != ssrc or not self._sdes:
            cname = (self.cname or "").encode()[:255]
            # RFC 3550 §6.5: SSRC, items, a null octet ending the list, padding to 32 bits.
            chunk = _U32.pack(ssrc) + bytes((SDES_CNAME, len(cname))) + cname + b"\0"
            chunk += bytes(-len(chunk) % 4)
            self._sdes = _HEADER_SSRC.pack(0x81, RTCP_SDES, len(chunk) // 4, ssrc) + chunk[4:]
            self._sdes_ssrc = ssrc
        return self._sdes

    def _report(self, now: float) -> bytes:
        """The encoded SR or RR, SDES CNAME and any pending collision BYE (RFC 3550 §6.1)."""
        # hot path: packed directly (the same bytes as RtcpSenderReport/RtcpReceiverReport
        # .encode(), without building the packet objects).
        sources = self._sources
        count = 0
        blocks = b""
        if sources:
            # RFC 3550 §6.4: at most 31 report blocks (5-bit count).
            encoded = [s.report_block(now).encode() for s in list(sources.values())[:31] if s.valid]
            count = len(encoded)
            blocks = b"".join(encoded)
        if self._is_sender():
            # RFC 3550 §6.4.1: the SR's RTP timestamp is the same instant as its NTP one.
            rtp_ts = (
                self._last_rtp_ts + round((now - self._last_send) * self.clock_rate)
            ) & 0xFFFFFFFF
            head = _SR_HEAD.pack(
                0x80 | count,
                RTCP_SR,
                6 + 6 * count,
                self.ssrc,
                ntp_from_time(now),
                rtp_ts,
                self.packets_sent & 0xFFFFFFFF,
                self.octets_sent & 0xFFFFFFFF,
            )
        else:
            head = _HEADER_SSRC.pack(0x80 | count, RTCP_RR, 1 + 6 * count, self.ssrc)
        data = head + blocks + self._sdes_cname()
        if self._pending_bye:
            data += RtcpBye(tuple(self._pending_bye), b"SSRC collision").encode()
            self._pending_bye.clear()
        return data

    def build_report(self, now: float) -> bytes:
        """A compound SR (if we sent since the last report) or RR, plus SDES CNAME."""
        data = self._report(now)
        self._sent_before_last = self._we_sent
        self._we_sent = False
        self._active_senders.clear()
        self._initial = False
        self.rtcp_sent += 1
        self._avg_rtcp_size += (len(data) + _UDP_IP_OVERHEAD - self._avg_rtcp_size) / 16.0
        return data

    def build_bye(self, now: float, reason: bytes | None = None) -> bytes:
        """A compound report ending with a BYE for our SSRC (RFC 3550 §6.6)."""
        if reason is None:
            bye = _HEADER_SSRC.pack(0x81, RTCP_BYE, 1, self.ssrc)
        else:
            bye = RtcpBye((self.ssrc,), reason).encode()
        self.rtcp_sent += 1
        return self._report(now) + bye

    def set_clock_rate(self, clock_rate: int) -> None:
        """Count RTP timestamps in ``clock_rate`` from now on, for every known source too.

        RFC 3550 §6.4.1: interarrival jitter is kept in timestamp units; a source that
        was already measured at the old rate (a packet before the codec was known) is
        switched as well, so its jitter converts to seconds with the codec's clock.
        """
        self.clock_rate = clock_rate
        for source in self._sources.values():
            source.set_clock_rate(clock_rate)

    def statistics(self) -> SessionStatistics:
        """A snapshot of the session's figures."""
        primary = self.primary_source
        return SessionStatistics(
            ssrc=self.ssrc,
            packets_sent=self.packets_sent,
            octets_sent=self.octets_sent,
            received=None if primary is None else primary.snapshot(),
            remote=self.remote_report,
            rtt_seconds=self.rtt,
            rtcp_sent=self.rtcp_sent,
            rtcp_received=self.rtcp_received,
            receive_queue_drops=self.receive_queue_drops,
            invalid_packets=self.invalid_packets,
            ssrc_collisions=self.ssrc_collisions,
            srtp_failures=self.srtp_failures,
            rtp_source_drops=self.latch.rtp_drops,
            rtcp_source_drops=self.latch.rtcp_drops,
        )
