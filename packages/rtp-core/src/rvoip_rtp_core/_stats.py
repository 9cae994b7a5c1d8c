"""Receiver statistics exactly per RFC 3550 appendix A (A.1, A.3, A.7, A.8); no clocks inside."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ._rtcp import ReportBlock
from ._seq import ntp_from_time, ntp_middle32

__all__ = [
    "MAX_DROPOUT",
    "MAX_MISORDER",
    "MIN_SEQUENTIAL",
    "RTCP_MIN_TIME",
    "ReceptionStats",
    "RemoteReport",
    "SessionStatistics",
    "SourceStatistics",
    "rtcp_interval",
    "rtt_from_report",
]

# RFC 3550 A.1 constants.
MIN_SEQUENTIAL = 2
MAX_DROPOUT = 3000
MAX_MISORDER = 100
RTP_SEQ_MOD = 1 << 16

RTCP_MIN_TIME = 5.0
_DUP_WINDOW_BITS = 1024
_DUP_WINDOW_MASK = (1 << _DUP_WINDOW_BITS) - 1


@attrs.frozen
class ReceptionStats:
    """What we measured about one remote source's stream (a snapshot)."""

    ssrc: int
    packets_received: int
    octets_received: int
    packets_expected: int
    packets_lost: int
    duplicates: int
    fraction_lost: float
    loss_percent: float
    jitter: float
    jitter_seconds: float
    extended_highest_sequence: int


@attrs.frozen
class RemoteReport:
    """What the peer's latest report block says about our stream."""

    fraction_lost: float
    packets_lost: int
    jitter: float
    jitter_seconds: float
    extended_highest_sequence: int
    received_at: float


@attrs.frozen
class SessionStatistics:
    """A snapshot of one RTP session: what we sent, what we received, what the peer reports."""

    ssrc: int
    packets_sent: int
    octets_sent: int
    received: ReceptionStats | None
    remote: RemoteReport | None
    rtt_seconds: float | None
    rtcp_sent: int
    rtcp_received: int
    receive_queue_drops: int
    invalid_packets: int
    ssrc_collisions: int
    srtp_failures: int
    rtp_source_drops: int = 0  # RTP dropped for its source address (see SourceLatch)
    rtcp_source_drops: int = 0  # RTCP dropped for its source address


@attrs.define(eq=False)
class SourceStatistics:
    """Per-source receiver state of RFC 3550 A.1 (validation), A.3 (loss), A.8 (jitter).

    Arrival times are passed in (seconds); jitter is kept in the integer form of A.8
    (``jitter_q4`` is 16 times the estimate) so reports are exact integers.
    """

    ssrc: int
    clock_rate: int
    min_sequential: int = MIN_SEQUENTIAL
    max_dropout: int = MAX_DROPOUT
    max_misorder: int = MAX_MISORDER
    max_seq: int = attrs.field(default=0, init=False)
    cycles: int = attrs.field(default=0, init=False)
    base_seq: int = attrs.field(default=0, init=False)
    bad_seq: int = attrs.field(default=RTP_SEQ_MOD + 1, init=False)
    probation: int = attrs.field(default=0, init=False)
    received: int = attrs.field(default=0, init=False)
    octets: int = attrs.field(default=0, init=False)
    duplicates: int = attrs.field(default=0, init=False)
    expected_prior: int = attrs.field(default=0, init=False)
    received_prior: int = attrs.field(default=0, init=False)
    jitter_q4: int = attrs.field(default=0, init=False)
    last_fraction_lost: int = attrs.field(default=0, init=False)
    last_sr_ntp: int = attrs.field(default=0, init=False)
    last_sr_arrival: float | None = attrs.field(default=None, init=False)
    _started: bool = attrs.field(default=False, init=False)
    _transit_prev_arrival: int | None = attrs.field(default=None, init=False)
    _transit_prev_ts: int = attrs.field(default=0, init=False)
    _window: int = attrs.field(default=0, init=False)

    def set_clock_rate(self, clock_rate: int) -> None:
        """Switch the timestamp clock (the codec became known).

        The jitter estimate and the last arrival are converted to the new units, so no
        spurious jump enters the RFC 3550 A.8 estimate.
        """
        old = self.clock_rate
        if clock_rate == old or clock_rate <= 0:
            return
        self.jitter_q4 = self.jitter_q4 * clock_rate // old
        prev = self._transit_prev_arrival
        if prev is not None:
            self._transit_prev_arrival = prev * clock_rate // old
        self.clock_rate = clock_rate

    def _init_seq(self, seq: int) -> None:
        # RFC 3550 A.1 init_seq()
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0
        self._window = 1

    def _update_seq(self, seq: int) -> bool:
        """RFC 3550 A.1 update_seq(): whether the packet counts as valid."""
        if not self._started:
            # A.1: a new source starts on probation.
            self._started = True
            self._init_seq(seq)
            self.max_seq = (seq - 1) & 0xFFFF
            self.probation = self.min_sequential
        udelta = (seq - self.max_seq) & 0xFFFF
        if self.probation:
            # A.1: the source is valid once MIN_SEQUENTIAL packets arrive in sequence.
            if seq == (self.max_seq + 1) & 0xFFFF:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.received += 1
                    return True
            else:
                self.probation = self.min_sequential - 1
                self.max_seq = seq
            return False
        if udelta < self.max_dropout:
            # A.1: in order, with permissible gap; count a wrap of the 16-bit space.
            if udelta == 0:
                self.duplicates += 1  # a repeat of the highest packet
            elif seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD
            self.max_seq = seq
            self._window = ((self._window << udelta) | 1) & _DUP_WINDOW_MASK
        elif udelta <= RTP_SEQ_MOD - self.max_misorder:
            # A.1: the sequence number made a very large jump; two sequential packets
            # mean the other side restarted without telling us.
            if seq == self.bad_seq:
                self._init_seq(seq)
            else:
                self.bad_seq = (seq + 1) & 0xFFFF
                return False
        else:
            # A.1: duplicate or reordered packet.
            back = RTP_SEQ_MOD - udelta
            if back < _DUP_WINDOW_BITS:
                bit = 1 << back
                if self._window & bit:
                    self.duplicates += 1
                else:
                    self._window |= bit
        self.received += 1
        return True

    def update(self, sequence_number: int, timestamp: int, arrival: float, size: int = 0) -> bool:
        """Account one received packet; returns whether it is valid (A.1).

        Args:
            sequence_number: the packet's 16-bit sequence number.
            timestamp: the packet's RTP timestamp.
            arrival: arrival time in seconds (any fixed origin, same for every call).
            size: payload octets, for the octet count.
        """
        before = self.bad_seq
        valid = self._update_seq(sequence_number)
        if valid:
            self.octets += size
        elif self.bad_seq != before:
            return False  # a rejected jump: keep it out of the jitter estimate
        # RFC 3550 A.8: D(i-1,i) = (Rj - Ri) - (Sj - Si); J += (|D| - J) / 16, in the
        # integer form jitter += d - ((jitter + 8) >> 4), in timestamp units.
        arrival_ts = round(arrival * self.clock_rate)
        prev = self._transit_prev_arrival
        if prev is not None:
            ts_delta = (timestamp - self._transit_prev_ts) & 0xFFFFFFFF
            if ts_delta >= 0x80000000:
                ts_delta -= 0x100000000
            d = (arrival_ts - prev) - ts_delta
            if d < 0:
                d = -d
            self.jitter_q4 += d - ((self.jitter_q4 + 8) >> 4)
        self._transit_prev_arrival = arrival_ts
        self._transit_prev_ts = timestamp
        return valid

    @property
    def valid(self) -> bool:
        """Whether the source has passed probation."""
        return self._started and self.probation == 0

    @property
    def extended_max(self) -> int:
        """Extended highest sequence number received (A.3)."""
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        """Packets expected so far (A.3); 0 while on probation."""
        if not self.valid:
            return 0
        return self.extended_max - self.base_seq + 1

    @property
    def cumulative_lost(self) -> int:
        """Expected minus received (A.3); negative when duplicates outnumber losses."""
        return self.expected - self.received

    @property
    def jitter(self) -> float:
        """Interarrival jitter estimate in timestamp units (A.8)."""
        return self.jitter_q4 / 16.0

    def on_sender_report(self, ntp_timestamp: int, arrival: float) -> None:
        """Remember the last SR from this source, for the LSR/DLSR fields of our reports."""
        self.last_sr_ntp = ntp_timestamp
        self.last_sr_arrival = arrival

    def report_block(self, now: float) -> ReportBlock:
        """Build a report block for this source and start a new interval (A.3)."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        self.expected_prior = expected
        received_interval = self.received - self.received_prior
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = (lost_interval << 8) // expected_interval
        self.last_fraction_lost = fraction
        if self.last_sr_arrival is None:
            lsr = dlsr = 0
        else:
            # RFC 3550 §6.4.1: DLSR in units of 1/65536 s.
            lsr = ntp_middle32(self.last_sr_ntp)
            dlsr = max(0, int((now - self.last_sr_arrival) * 65536.0)) & 0xFFFFFFFF
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            cumulative_lost=self.cumulative_lost,
            highest_sequence=self.extended_max & 0xFFFFFFFF,
            jitter=self.jitter_q4 >> 4,
            lsr=lsr,
            dlsr=dlsr,
        )

    def snapshot(self) -> ReceptionStats:
        """A frozen copy of the current figures."""
        expected = self.expected
        lost = self.cumulative_lost
        return ReceptionStats(
            ssrc=self.ssrc,
            packets_received=self.received,
            octets_received=self.octets,
            packets_expected=expected,
            packets_lost=lost,
            duplicates=self.duplicates,
            fraction_lost=self.last_fraction_lost / 256.0,
            loss_percent=100.0 * max(lost, 0) / expected if expected > 0 else 0.0,
            jitter=self.jitter,
            jitter_seconds=self.jitter / self.clock_rate,
            extended_highest_sequence=self.extended_max,
        )


def rtt_from_report(block: ReportBlock, arrival: float) -> float | None:
    """Round-trip time in seconds from a report block about our stream (RFC 3550 §6.4.1).

    RTT = A - LSR - DLSR in compact NTP units; None if the peer has no SR from us yet
    or the result is negative (clocks/rounding), which the RFC says to ignore.
    """
    if block.lsr == 0:
        return None
    a = ntp_middle32(ntp_from_time(arrival))
    d = (a - block.lsr - block.dlsr) & 0xFFFFFFFF
    if d >= 0x80000000:
        return None
    return d / 65536.0


def rtcp_interval(
    members: int,
    senders: int,
    rtcp_bw: float,
    we_sent: bool,
    avg_rtcp_size: float,
    initial: bool,
    rng: Callable[[], float],
    min_time: float = RTCP_MIN_TIME,
) -> float:
    """Seconds until the next RTCP report (RFC 3550 A.7's ``rtcp_interval()``).

    Args:
        members: session members including us.
        senders: members that sent RTP since the last report (including us).
        rtcp_bw: RTCP bandwidth in octets per second (5 % of the session bandwidth).
        we_sent: whether we sent RTP since the last report.
        avg_rtcp_size: average compound RTCP size in octets (with UDP/IP overhead).
        initial: whether no RTCP has been sent yet (halves the minimum).
        rng: returns a uniform float in [0, 1) (``random.Random().random``).
        min_time: the minimum interval (RFC 3550: 5 s).
    """
    sender_fraction = 0.25
    receiver_fraction = 1.0 - sender_fraction
    # A.7: "e - 3/2" compensates for the timer reconsideration algorithm.
    compensation = 2.71828 - 1.5
    rtcp_min_time = min_time / 2.0 if initial else min_time
    n = members
    if senders <= members * sender_fraction:
        if we_sent:
            rtcp_bw *= sender_fraction
            n = senders
        else:
            rtcp_bw *= receiver_fraction
            n -= senders
    t = avg_rtcp_size * n / rtcp_bw
    t = max(t, rtcp_min_time)
    # A.7: randomise to [0.5, 1.5] of the interval to avoid synchronisation.
    t = t * (rng() + 0.5)
    return t / compensation
