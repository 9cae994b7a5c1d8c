"""Which source address a session accepts media from, and where it sends (sans-IO).

Symmetric RTP (RFC 4961) sends to where the peer's packets come from, which lets a
NATed peer whose ``c=`` line names a private address be reached. Latching blindly on
any new source lets anyone who can reach the port hijack the call (redirect our
stream to themselves or to a victim, inject audio). :class:`SourceLatch` does what
Asterisk's ``strictrtp`` and pjmedia's NAT probation do:

* during a short **probation** the source is learned: a packet from the signalled
  (SDP) address latches at once; another address latches only after
  ``probation_packets`` consecutive in-sequence packets of one SSRC from that address,
  within ``probation_time`` seconds of the first packet;
* then the source is **locked**: packets from any other address are dropped and
  counted; an SSRC change from the locked address is a new stream (re-INVITE,
  transfer) and is accepted;
* RTCP follows the same rule: with rtcp-mux it is bound to the RTP source; on its own
  port it latches on the signalled RTCP address or on the host of the locked RTP source.

Modes: ``strict`` (the above), ``learn`` (the same, but a silent locked source
— nothing accepted for ``relearn_after`` seconds — is forgotten and a new one learned,
symmetric-RTP style), ``off`` (accept everything; latch on every new SSRC, the old
behaviour). The arrival address and ``now`` are arguments: no socket, no clock.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, Literal

import attrs

from ._errors import RtpError

__all__ = [
    "DEFAULT_LATCH_MODE",
    "LATCH_MODES",
    "LatchMode",
    "SourceLatch",
    "check_remote",
]

Address = tuple[str, int]
LatchMode = Literal["strict", "learn", "off"]
LATCH_MODES: tuple[LatchMode, ...] = ("strict", "learn", "off")
DEFAULT_LATCH_MODE: LatchMode = "strict"
DEFAULT_PROBATION_PACKETS = 4  # Asterisk's strictrtp probation default
DEFAULT_PROBATION_TIME = 2.0  # seconds from the first packet
DEFAULT_RELEARN_AFTER = 2.0  # seconds of silence before "learn" forgets a source


# Addresses already validated, as given -> normalised (bounded: cleared when full). hot
# path: every call sets its remote from the SDP, and peers reuse their few addresses.
_VALID: dict[Address, Address] = {}
_VALID_LIMIT = 1024


def check_remote(address: Address, what: str = "remote") -> Address:
    """Validate a remote media address; returns it with the host normalised.

    The host must be an IP literal: a name would be resolved by ``sendto`` on every
    packet, synchronously inside the event loop (resolve names once, asynchronously,
    before setting the remote). The port must be 1-65535.

    Raises:
        RtpError: the host is not an IP literal or the port is out of range.
    """
    # Only an exact (str, int) tuple is looked up: True == 1 must not pass as a port.
    exact = type(address) is tuple and len(address) == 2 and type(address[1]) is int
    if exact:
        found = _VALID.get(address)
        if found is not None:
            return found
    normalised = _check_remote(address, what)
    if exact and type(address[0]) is str:
        if len(_VALID) >= _VALID_LIMIT:
            _VALID.clear()
        _VALID[address] = normalised
    return normalised


def _check_remote(address: Address, what: str) -> Address:
    try:
        host, port = address
    except (TypeError, ValueError):
        raise RtpError(f"{what} address must be (host, port), got {address!r}") from None
    if type(port) is not int or not 0 < port <= 0xFFFF:
        raise RtpError(f"{what} port {port!r} is not in 1-65535")
    if not isinstance(host, str):
        raise RtpError(f"{what} host {host!r} is not an IP literal")
    # Compare with what recvfrom reports: the canonical spelling ("::1", not "0::1").
    # inet_pton parses literals only (never a resolver; "127.1" is refused) in ~0.3 µs.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return (socket.inet_ntop(family, socket.inet_pton(family, host)), port)
    except (OSError, ValueError):
        pass
    try:
        ip = ipaddress.ip_address(host)  # e.g. a scoped IPv6 address ("fe80::1%eth0")
    except ValueError:
        raise RtpError(
            f"{what} host {host!r} is not an IP literal (resolve names before setting it)"
        ) from None
    return (str(ip), port)


@attrs.define(eq=False)
class SourceLatch:
    """The accepted media source and the send destinations of one RTP session.

    Attributes:
        mode: ``strict``, ``learn`` or ``off`` (see the module docstring).
        rtcp_mux: RTP and RTCP share one port (RFC 5761).
        follow: send to the latched source (symmetric RTP); else always to the
            signalled addresses.
        probation_packets: consecutive in-sequence packets that latch a source other
            than the signalled one.
        probation_time: seconds, from the first packet received, during which a source
            may be learned; afterwards the signalled address is locked.
        relearn_after: ``learn`` mode: seconds without an accepted packet after which the
            locked source is forgotten.
        rtp_target: where RTP goes now (None before a remote is set).
        rtcp_target: where RTCP goes now.
        rtp_drops: RTP packets dropped because of their source address.
        rtcp_drops: RTCP packets dropped because of their source address.
    """

    mode: LatchMode = DEFAULT_LATCH_MODE
    rtcp_mux: bool = False
    follow: bool = True
    probation_packets: int = DEFAULT_PROBATION_PACKETS
    probation_time: float = DEFAULT_PROBATION_TIME
    relearn_after: float = DEFAULT_RELEARN_AFTER
    rtp_target: Address | None = attrs.field(default=None, init=False)
    rtcp_target: Address | None = attrs.field(default=None, init=False)
    rtp_drops: int = attrs.field(default=0, init=False)
    rtcp_drops: int = attrs.field(default=0, init=False)
    _signalled_rtp: Address | None = attrs.field(default=None, init=False)
    _signalled_rtcp: Address | None = attrs.field(default=None, init=False)
    # The locked source as recvfrom spelt it (the per-packet comparison), and as (host, port).
    _locked: Any = attrs.field(default=None, init=False)
    _locked_hp: Address | None = attrs.field(default=None, init=False)
    _locked_rtcp: Any = attrs.field(default=None, init=False)
    _last_seen: float = attrs.field(default=0.0, init=False)
    _probation_end: float | None = attrs.field(default=None, init=False)
    _cand: Any = attrs.field(default=None, init=False)
    _cand_ssrc: int = attrs.field(default=-1, init=False)
    _cand_seq: int = attrs.field(default=-1, init=False)
    _cand_count: int = attrs.field(default=0, init=False)
    _off_ssrc: int = attrs.field(default=-1, init=False)
    _previous: Address | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        if self.mode not in LATCH_MODES:
            raise RtpError(f"latch mode {self.mode!r} is not one of {LATCH_MODES}")
        if self.probation_packets < 1 or self.probation_time < 0 or self.relearn_after <= 0:
            raise RtpError("latch probation_packets >= 1, probation_time >= 0, relearn_after > 0")

    @property
    def locked(self) -> Address | None:
        """The locked RTP source (None while on probation or with mode ``off``)."""
        return self._locked_hp

    def set_remote(self, rtp: Address, rtcp: Address | None = None) -> None:
        """Set the signalled addresses (from SDP); both are validated.

        A changed address (re-INVITE, transfer) starts a new probation; the same
        addresses again (a session refresh, hold) keep the locked source.

        Args:
            rtp: the ``c=``/``m=`` address.
            rtcp: the RTCP address (``a=rtcp``); default the RTP port + 1, or the RTP
                address with rtcp-mux.

        Raises:
            RtpError: a host that is not an IP literal, or a port (also the derived
                RTCP port) outside 1-65535.
        """
        rtp = check_remote(rtp, "remote RTP")
        if rtcp is None:
            if self.rtcp_mux:
                rtcp = rtp
            elif rtp[1] >= 0xFFFF:
                # RFC 3550 §11: RTCP on the next higher port, which must exist.
                raise RtpError(f"remote RTP port {rtp[1]} leaves no port for RTCP")
            else:
                rtcp = (rtp[0], rtp[1] + 1)
        else:
            rtcp = check_remote(rtcp, "remote RTCP")
        if rtp == self._signalled_rtp and rtcp == self._signalled_rtcp:
            return
        self._signalled_rtp = rtp
        self._signalled_rtcp = rtcp
        self.rtp_target = rtp
        self.rtcp_target = rtcp
        self._unlock()
        self._off_ssrc = -1

    def _unlock(self) -> None:
        self._locked = self._locked_hp = self._locked_rtcp = self._previous = None
        self._probation_end = None
        self._cand = None
        self._cand_count = 0
        if self._signalled_rtp is not None:
            self.rtp_target = self._signalled_rtp
            self.rtcp_target = self._signalled_rtcp

    def _relearn(self) -> None:
        # Keep sending where we did (and RTCP's lock) until another source is learned;
        # the silent source itself re-locks at once, like the signalled one.
        self._previous = self._locked_hp
        self._locked = self._locked_hp = None
        self._probation_end = None
        self._cand = None
        self._cand_count = 0

    def _lock(self, source: Any, now: float) -> None:
        hp = (source[0], source[1])
        rtcp = self._locked_rtcp
        if rtcp is not None and not self.rtcp_mux and rtcp[0] != hp[0]:
            self._locked_rtcp = None  # a new host (learn mode): RTCP latches anew
        self._locked = source
        self._locked_hp = hp
        self._last_seen = now
        self._cand = None
        if self.follow:
            self.rtp_target = hp
            if self.rtcp_mux:
                self.rtcp_target = hp
        if self.rtcp_mux:
            self._locked_rtcp = source

    def accept_rtp(self, source: Any, ssrc: int, seq: int, now: float) -> bool:
        """Whether an RTP packet from ``source`` (as recvfrom gives it) is accepted.

        Args:
            source: the arrival address (``(host, port)``, or the 4-tuple of IPv6).
            ssrc: the packet's SSRC.
            seq: the packet's sequence number.
            now: the arrival time in seconds.
        """
        # hot path: after the lock, one tuple comparison per packet.
        if source == self._locked:
            self._last_seen = now
            return True
        return self._accept_rtp_slow(source, ssrc, seq, now)

    def _accept_rtp_slow(self, source: Any, ssrc: int, seq: int, now: float) -> bool:
        if self.mode == "off":
            if ssrc != self._off_ssrc:
                # The old behaviour: every new SSRC re-latches, from wherever it comes.
                self._off_ssrc = ssrc
                if self.follow:
                    hp = (source[0], source[1])
                    self.rtp_target = hp
                    if self.rtcp_mux:
                        self.rtcp_target = hp
            return True
        hp = (source[0], source[1])
        if self._locked_hp is not None:
            if self.mode == "learn" and now - self._last_seen >= self.relearn_after:
                self._relearn()  # the locked source fell silent: learn again
            elif hp == self._locked_hp:  # same address, spelt differently (IPv6 tuple)
                self._locked = source
                self._last_seen = now
                return True
            else:
                self.rtp_drops += 1
                return False
        return self._probation(source, hp, ssrc, seq, now)

    def _probation(self, source: Any, hp: Address, ssrc: int, seq: int, now: float) -> bool:
        signalled = self._signalled_rtp
        if hp == signalled or hp == self._previous:
            self._lock(source, now)  # the signalled (or the known) peer latches at once
            return True
        end = self._probation_end
        if end is None:
            end = self._probation_end = now + self.probation_time
        elif now > end and signalled is not None:
            # Nothing learned in time: keep to what signalling said.
            self._lock(signalled, now)
            self.rtp_drops += 1
            return False
        if (
            source == self._cand
            and ssrc == self._cand_ssrc
            and seq == (self._cand_seq + 1) & 0xFFFF
        ):
            self._cand_count += 1
        else:
            self._cand = source
            self._cand_ssrc = ssrc
            self._cand_count = 1
        self._cand_seq = seq
        if self._cand_count >= self.probation_packets:
            self._lock(source, now)
            return True
        self.rtp_drops += 1
        return False

    def accept_rtcp(self, source: Any, now: float) -> bool:
        """Whether an RTCP packet from ``source`` is accepted (and latch its address).

        With rtcp-mux the RTP source rules; on its own port RTCP latches on the
        signalled RTCP address, or on the host of the locked RTP source (a NAT maps
        the RTCP port independently, but the public address is the same).
        """
        if source == self._locked_rtcp:
            return True
        hp = (source[0], source[1])
        if self.mode == "off":
            if self._locked_rtcp is None and not self.rtcp_mux:
                self._locked_rtcp = source  # the old behaviour: latch on the first one
                if self.follow:
                    self.rtcp_target = hp
            return True
        if self.rtcp_mux:
            locked = self._locked_hp
            if hp == locked or (locked is None and hp in (self._signalled_rtp, self._previous)):
                return True
            self.rtcp_drops += 1
            return False
        if self._locked_rtcp is None and (
            hp == self._signalled_rtcp
            or (self._locked_hp is not None and hp[0] == self._locked_hp[0])
        ):
            self._locked_rtcp = source
            if self.follow:
                self.rtcp_target = hp
            return True
        self.rtcp_drops += 1
        return False
