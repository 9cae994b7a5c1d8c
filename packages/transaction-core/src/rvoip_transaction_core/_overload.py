"""Overload control: shed new requests with a stateless 503 before they create any state.

Why: past its saturation rate an endpoint that takes every INVITE falls behind; the
backlog waits in the kernel's socket receive queue (where event-loop lag does not see
it), the peers retransmit INVITEs and BYEs into it, the queue overflows and drops the
ACKs and BYEs that would have ended calls, and goodput collapses to a tenth of the
maximum. Refusing the excess *new* requests early and cheaply keeps the work per
second bounded, so the calls that are admitted complete (RFC 3261 §21.5.4: 503 Service
Unavailable with Retry-After; RFC 7339 names the same idea for proxies).

The pieces, all sans-IO:

- `OverloadConfig`: the settings, on by default (``enabled=False`` turns it off).
- `new_request_method`: classifies a datagram from its raw bytes: the method token of a
  request with no To tag (a new out-of-dialog request) or None (a response, ACK, BYE,
  CANCEL, an in-dialog request: those finish calls and always go through).
- `AdmissionControl`: fed receive-queue observations (queued bytes and drop count from
  ``SO_MEMINFO``) and ``now``, keeps the fraction of new requests admitted (AIMD per
  window) and answers admit/shed.
- `stateless_503`: the response built from the request's Via/From/To/Call-ID/CSeq lines
  (§8.2.6, §21.5.4), with one To tag per endpoint so the ACKs of these 503s are dropped
  from the raw bytes too.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import attrs

__all__ = [
    "AdmissionControl",
    "OverloadConfig",
    "new_request_method",
    "stateless_503",
]

# Methods that end or continue something already admitted: never shed.
_NEVER_SHED = frozenset({b"ACK", b"BYE", b"CANCEL", b"PRACK"})
# RFC 3261 §7.3.1 / §20: header names are case-insensitive, some have a compact form.
_TO_LINE = re.compile(rb"\r?\n(?:to|t)[ \t]*:([^\r\n]*)", re.IGNORECASE)
_CALL_ID_LINE = re.compile(rb"\r?\n(?:call-id|i)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?\n", re.IGNORECASE)
_TAG_PARAM = re.compile(rb";[ \t]*tag[ \t]*=", re.IGNORECASE)
_COPIED = {
    b"via": b"Via",
    b"v": b"Via",
    b"from": b"From",
    b"f": b"From",
    b"to": b"To",
    b"t": b"To",
    b"call-id": b"Call-ID",
    b"i": b"Call-ID",
    b"cseq": b"CSeq",
}
_REQUIRED = (b"Via", b"From", b"To", b"Call-ID", b"CSeq")
_RPORT = re.compile(rb";[ \t]*rport(?=[ \t]*(?:;|,|$))", re.IGNORECASE)
_SENT_BY = re.compile(
    rb"^[ \t]*SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*[A-Za-z]+[ \t]+(\[[^\]]*\]|[^ \t;:,]+)(?::(\d+))?",
    re.IGNORECASE,
)


@attrs.frozen
class OverloadConfig:
    """Settings of the overload control (safe defaults; on unless ``enabled=False``).

    The signal is the UDP socket's receive queue as the kernel reports it
    (``SO_MEMINFO``: bytes held, datagrams dropped), read at most once per
    ``sample_interval`` and only when a new request arrives. The queue is bursty even
    well under saturation (on loopback at 1,500 calls/s: median 20 KB, peaks near 80 KB),
    so one reading says little; a *standing* queue does (CoDel's idea): each ``window``
    the lowest reading is compared with the thresholds. Two windows in a row whose
    lowest reading is at or over ``queue_high`` bytes and not shrinking (one such window
    is what a pause of the process leaves behind, and it drains by itself), or one in
    which the kernel dropped datagrams or the queue stood at ``queue_severe``, are
    overloaded: the fraction of new requests admitted is multiplied by ``decrease``
    (by ``severe`` for drops or ``queue_severe``). A
    window whose lowest reading is at or under ``queue_low`` raises it by ``increase``
    (additive increase, multiplicative decrease: it settles where the admitted calls
    just fit, instead of flapping between all and none); past ``probe_from`` times the
    fraction of the last cut, by ``increase * probe_step`` only for ``probe_windows``
    calm windows, so the fraction stays near the capacity found instead of overshooting
    it again at full speed, yet recovers quickly once the load has really gone. The
    socket's receive buffer is raised to ``receive_buffer`` so that a pause of the
    process (a cold start, a full garbage collection, a busy machine) queues datagrams
    instead of dropping them; the thresholds shrink with a smaller buffer (at most a
    quarter, a sixteenth and 60 % of it) so they keep their meaning where the kernel
    grants less (``net.core.rmem_max``).

    Attributes:
        enabled: False turns the control off (every request is admitted, no readings).
        window: seconds per control decision.
        queue_high: bytes: a window whose lowest reading is this or more is overloaded
            (kernel accounting: ~2.3 KB per small datagram on loopback).
        queue_low: bytes: a window whose lowest reading is this or less lets the
            admitted fraction grow again.
        queue_severe: bytes: a window whose lowest reading is this or more is a surge.
        receive_buffer: bytes asked for the UDP socket's receive buffer (SO_RCVBUF; the
            kernel caps it at ``net.core.rmem_max`` and doubles it); 0 keeps the default.
        shed_on_drops: datagrams dropped by the kernel in a window mean overload.
        decrease: factor applied to the admitted fraction after an overloaded window.
        severe: factor applied instead when the kernel dropped datagrams or the queue
            stood at ``queue_severe`` (a sudden surge: react at once).
        increase: added to the admitted fraction after a window with a short queue.
        probe_from: share of the fraction at the last cut above which it grows slowly.
        probe_step: share of ``increase`` added per window above that point.
        probe_windows: calm windows after a cut during which that slow step applies.
        min_admit: the admitted fraction never goes under this (new calls keep a chance).
        sample_interval: seconds between two readings of the queue (a syscall each).
        retry_after: seconds in the 503's Retry-After (RFC 3261 §20.33); 0 leaves it out.
    """

    enabled: bool = True
    window: float = 0.05
    queue_high: int = 384 * 1024
    queue_low: int = 32 * 1024
    queue_severe: int = 1024 * 1024
    receive_buffer: int = 1024 * 1024
    shed_on_drops: bool = True
    decrease: float = 0.8
    severe: float = 0.5
    increase: float = 0.03
    probe_from: float = 0.9
    probe_step: float = 0.2
    probe_windows: int = 20
    min_admit: float = 0.02
    sample_interval: float = 0.002
    retry_after: int = 1

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.queue_low <= self.queue_high <= self.queue_severe:
            raise ValueError("need 0 <= queue_low <= queue_high <= queue_severe")
        if self.receive_buffer < 0:
            raise ValueError("receive_buffer must not be negative")
        if self.window <= 0 or self.sample_interval < 0 or self.retry_after < 0:
            raise ValueError("window must be positive, times not negative")
        if not (0.0 < self.severe <= self.decrease < 1.0 and 0.0 < self.increase <= 1.0):
            raise ValueError("need 0 < severe <= decrease < 1 and 0 < increase <= 1")
        if self.probe_windows < 0:
            raise ValueError("probe_windows must not be negative")
        if not (0.0 <= self.probe_from <= 1.0 and 0.0 < self.probe_step <= 1.0):
            raise ValueError("need 0 <= probe_from <= 1 and 0 < probe_step <= 1")
        if not 0.0 <= self.min_admit <= 1.0:
            raise ValueError("need 0 <= min_admit <= 1")


def _header_value(lowered: bytes, original: bytes, names: tuple[bytes, ...]) -> bytes | None:
    """The first value of a header (any of its ``names``, lower-case, with the colon).

    ``lowered`` is the lower-cased head (names are case-insensitive, RFC 3261 §7.3.1);
    ``original`` the head itself, whose value is returned. A name written with blanks
    before its colon is found by the slower regular expression fallback of the caller.
    """
    for name in names:
        at = lowered.find(name)
        if at >= 0:
            start = at + len(name)
            end = original.find(b"\r\n", start)
            return original[start : end if end >= 0 else len(original)]
    return None


def new_request_method(data: bytes) -> bytes | None:
    """The method of a new out-of-dialog request in ``data``, else None (never raises).

    RFC 3261 §12.2: a request inside a dialog carries the remote tag in To; §8.1.1.2: a
    new request has none. ACK, BYE, CANCEL and PRACK are never candidates (they end or
    continue calls already admitted), nor is a response (``SIP/2.0 ...``).
    """
    space = data.find(b" ", 0, 32)
    if space <= 0:
        return None
    method = data[:space]
    if method in _NEVER_SHED or method.startswith(b"SIP/"):
        return None
    head_end = data.find(b"\r\n\r\n")
    head = data if head_end < 0 else data[:head_end]
    to = _header_value(head.lower(), head, (b"\nto:", b"\nt:"))
    if to is None:
        match = _TO_LINE.search(head)
        if match is None:
            return None
        to = match.group(1)
    if b"tag" in to.lower() and _TAG_PARAM.search(to) is not None:
        return None
    return method


def _stamped_via(value: bytes, host: str, port: int) -> bytes:
    """RFC 3261 §18.2.1 / RFC 3581 §4: the top Via with ``received`` and ``rport`` filled."""
    first = value.split(b",", 1)
    top = first[0]
    sent_by = _SENT_BY.match(top)
    shown = host.encode()
    params = b""
    if sent_by is None or sent_by.group(1).strip(b"[]") != shown:
        params += b";received=" + shown
    if _RPORT.search(top) is not None:
        top = _RPORT.sub(b"", top, count=1)
        params += b";rport=" + str(port).encode()
    return top.rstrip() + params + (b"," + first[1] if len(first) > 1 else b"")


_BRANCH = re.compile(rb";[ \t]*branch[ \t]*=[ \t]*([^; \t,]+)", re.IGNORECASE)


def top_via_key(via: bytes) -> tuple[str, str, int | None] | None:
    """(branch, sent-by host, sent-by port or None) of a raw top Via, None if unsure.

    What a server transaction is matched by (RFC 3261 §17.2.3), read without a parse;
    None for an IPv6 sent-by or anything unusual (the caller then parses it properly).
    """
    top = via.split(b",", 1)[0]
    sent_by = _SENT_BY.match(top)
    branch = _BRANCH.search(top)
    if sent_by is None or branch is None or sent_by.group(1).startswith(b"["):
        return None
    port = sent_by.group(2)
    try:
        return (
            branch.group(1).decode("ascii"),
            sent_by.group(1).decode("ascii"),
            int(port) if port else None,
        )
    except (UnicodeDecodeError, ValueError):
        return None


def response_port(via: bytes, source_port: int) -> int:
    """RFC 3261 §18.2.2 / RFC 3581 §4: the port a UDP response goes to.

    ``rport`` in the top Via: the source port; else the sent-by port, 5060 by default.
    """
    top = via.split(b",", 1)[0]
    if _RPORT.search(top) is not None:
        return source_port
    sent_by = _SENT_BY.match(top)
    if sent_by is not None and sent_by.group(2):
        return int(sent_by.group(2))
    return 5060


def stateless_503(
    data: bytes, host: str, port: int, to_tag: str, retry_after: int
) -> tuple[bytes, bytes] | None:
    """A stateless 503 for the request in ``data`` and its top Via, or None.

    RFC 3261 §8.2.6.1/§8.2.6.2: the response copies Via (all values, in order), From,
    Call-ID and CSeq, and To with a tag added; §21.5.4: 503 with a Retry-After. The top
    Via gets ``received``/``rport`` (§18.2.1, RFC 3581) from the source ``host``/``port``.
    Returns None when a required header is missing or a line is unreadable (the request
    then goes the normal way, where the parser answers what is wrong with it).
    """
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    lines = data[:head_end].split(b"\r\n")[1:]
    copied: list[tuple[bytes, bytes]] = []
    seen: set[bytes] = set()
    last: int | None = None
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            # RFC 3261 §7.3.1: a folded line continues the header before it.
            if last is not None:
                folded_name, folded = copied[last]
                copied[last] = (folded_name, (folded + b" " + line.strip()).strip())
            continue
        last = None
        raw_name, colon, value = line.partition(b":")
        if not colon:
            return None
        name = _COPIED.get(raw_name.rstrip(b" \t").lower())
        if name is None:
            continue
        value = value.strip()
        if name != b"Via" and name in seen:
            return None  # repeated single-value header: let the parser answer 400
        seen.add(name)
        last = len(copied)
        copied.append((name, value))
    if any(name not in seen for name in _REQUIRED):
        return None
    out = [b"SIP/2.0 503 Service Unavailable"]
    top_done = False
    for name, value in copied:
        if name == b"Via" and not top_done:
            value = _stamped_via(value, host, port)
            top_done = True
        elif name == b"To":
            value += b";tag=" + to_tag.encode()
        out.append(name + b": " + value)
    if retry_after:
        # RFC 3261 §20.33: when the caller may try again, in seconds.
        out.append(b"Retry-After: " + str(retry_after).encode())
    out.append(b"Content-Length: 0")
    top_via = next(value for name, value in copied if name == b"Via")
    return b"\r\n".join(out) + b"\r\n\r\n", top_via


@attrs.define(eq=False)
class AdmissionControl:
    """Admit or shed new requests from receive-queue observations (sans-IO).

    The owner calls `observe` with a reading when ``now >= next_sample``, and `admit` for
    each new out-of-dialog request while ``admit_fraction < 1``. ``admit_fraction`` is
    the share of new requests admitted (1.0 when not overloaded); admissions are spread
    evenly by a credit counter (no randomness). ``stats`` counts ``overload_windows``
    (windows judged overloaded) and ``overload_drops_seen`` (windows with kernel drops).
    """

    config: OverloadConfig = attrs.field(factory=OverloadConfig)
    stats: Counter[str] = attrs.field(factory=Counter)
    admit_fraction: float = 1.0
    _credit: float = 0.0
    _window_end: float | None = None
    _window_min: float = math.inf  # lowest bytes queued seen in the window
    _window_dropped: bool = False
    _previous_min: float = 0.0  # the last window's lowest reading
    _cut_at: float = 1.0  # the admitted fraction when the last overloaded window closed
    _calm: int = 0  # short-queue windows since the last cut
    _streak: int = 0  # windows in a row with a standing, not shrinking queue
    _capacity: int = -1  # the buffer size the thresholds below were scaled for
    _high: float = math.inf
    _low: float = 0.0
    _severe: float = math.inf
    next_sample: float = -math.inf  # when a reading is due (read by the owner's hot path)
    _drops: int | None = None

    @property
    def shedding(self) -> bool:
        """Whether some new requests are being refused."""
        return self.admit_fraction < 1.0

    def observe(self, queued: int, capacity: int, drops: int, now: float) -> float:
        """Take one reading of the receive queue; returns ``admit_fraction``.

        Args:
            queued: bytes the kernel holds for the socket (``SK_MEMINFO_RMEM_ALLOC``).
            capacity: the buffer's size in the same accounting (``SK_MEMINFO_RCVBUF``).
            drops: the socket's count of datagrams dropped so far (``SK_MEMINFO_DROPS``).
            now: the current time in seconds.
        """
        config = self.config
        self.next_sample = now + config.sample_interval
        if self._drops is not None and drops > self._drops:
            self._window_dropped = True
        self._drops = drops
        if capacity != self._capacity:
            self._capacity = capacity
            self._high = min(config.queue_high, capacity // 4)
            self._low = min(config.queue_low, capacity // 16)
            self._severe = min(config.queue_severe, capacity * 6 // 10)
        if self._window_end is None:
            self._window_end = now + config.window
        elif now >= self._window_end:
            self._decide()
            self._window_end = now + config.window
        self._window_min = min(self._window_min, queued)
        return self.admit_fraction

    def _decide(self) -> None:
        """Close a window: AIMD on the admitted fraction from its lowest reading and drops.

        A standing queue that is already shrinking (its lowest reading under the last
        window's) holds the fraction: the cut already made is draining it, and cutting
        again every window would overshoot (the queue is an integrator: it takes time
        to drain).
        """
        config = self.config
        low = self._window_min
        previous = self._previous_min
        self._previous_min = low
        dropped = self._window_dropped and config.shed_on_drops
        if self._window_dropped:
            self.stats["overload_drops_seen"] += 1
        self._window_min = math.inf
        self._window_dropped = False
        standing = low >= self._high and low >= previous
        self._streak = self._streak + 1 if standing else 0
        severe = dropped or low >= self._severe
        if severe or self._streak >= 2:
            self.stats["overload_windows"] += 1
            factor = config.severe if severe else config.decrease
            self._cut_at = self.admit_fraction
            self._calm = 0
            self.admit_fraction = max(config.min_admit, self.admit_fraction * factor)
        elif low <= self._low and self.admit_fraction < 1.0:
            step = config.increase
            self._calm += 1
            near_cut = self.admit_fraction >= config.probe_from * self._cut_at
            if near_cut and self._calm <= config.probe_windows:
                step *= config.probe_step
            self.admit_fraction = min(1.0, self.admit_fraction + step)

    def admit(self) -> bool:
        """Whether the next new request is admitted (at ``admit_fraction``, evenly spread)."""
        fraction = self.admit_fraction
        if fraction >= 1.0:
            return True
        credit = self._credit + fraction
        if credit < 1.0:
            self._credit = credit
            return False
        self._credit = credit - 1.0
        return True
