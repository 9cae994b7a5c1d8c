"""The RTP session driver: sockets and clock at the edge of :class:`RtpSessionCore`.

Asyncio (stdlib loop or uvloop): the non-blocking sockets are watched through
:mod:`._readers` (one epoll set per loop on Linux, else ``loop.add_reader``); the callback
reads with ``recvfrom(2048)`` and feeds the core synchronously. No transport and no task,
so :func:`open_rtp_session_now` opens a session from plain synchronous code running in
the loop. Trio: an anyio ``UDPSocket`` reader task per socket. Sending is always a
synchronous ``sendto`` without awaiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.abc
import attrs

from ._dtmf import DtmfEncoder
from ._errors import RtpError, RtpSessionClosedError, SrtpError
from ._latch import (
    DEFAULT_LATCH_MODE,
    DEFAULT_PROBATION_PACKETS,
    DEFAULT_PROBATION_TIME,
    DEFAULT_RELEARN_AFTER,
    LATCH_MODES,
    LatchMode,
    SourceLatch,
    check_remote,
)
from ._packet import RtpPacket, is_rtcp
from ._ports import PortAllocator
from ._readers import Readers, readers_for
from ._rtcp import RtcpPacket
from ._session_core import RtpSessionCore
from ._sockets import SessionSockets, local_host
from ._srtp import SrtpContext, SrtpSessionKeys
from ._stats import RTCP_MIN_TIME, SessionStatistics

__all__ = ["Address", "PacketHandler", "RtpSession", "RtpSessionConfig"]

Address = tuple[str, int]
PacketHandler = Callable[[RtpPacket, float], None]
RtcpHandler = Callable[[list[RtcpPacket], float], None]
# PACKAGING-NOTES §3.3: read at most 2048 bytes (asyncio's own 256 KiB read size costs an
# mmap/munmap per datagram); a larger datagram is truncated, which RTP never needs.
_DATAGRAM_MAX_SIZE = 2048
_LOG = logging.getLogger("rvoip_rtp_core")


_NO_TRANSPORTS: list[asyncio.BaseTransport] = []  # shared, never appended to


def _check_remote_field(
    _config: RtpSessionConfig, field: attrs.Attribute[Address | None], value: Address | None
) -> None:
    if value is not None:
        check_remote(value, field.name.replace("_", " "))


@attrs.frozen
class RtpSessionConfig:
    """How to open an RTP session (all fields optional).

    Remote addresses must be IP literals with ports in 1-65535 (and room for the
    derived RTCP port): a bad one raises :class:`RtpError` here, not at the first send.

    ``latch`` chooses which source is accepted (see :class:`SourceLatch`): ``strict``
    (default) learns it during a probation preferring the signalled address, then
    locks it; ``learn`` also re-learns after ``latch_relearn_after`` seconds of
    silence; ``off`` accepts everything and re-latches on every new SSRC.
    ``symmetric_rtp`` sends to the latched source (else always to the signalled one).
    """

    local_host: str = "127.0.0.1"
    port: int = 0  # explicit even RTP port; 0 = allocator or ephemeral even port
    port_allocator: PortAllocator | None = None
    rtcp_mux: bool = False
    remote_rtp: Address | None = attrs.field(default=None, validator=_check_remote_field)
    # default: RTP port + 1, or the RTP port with mux
    remote_rtcp: Address | None = attrs.field(default=None, validator=_check_remote_field)
    symmetric_rtp: bool = True
    latch: LatchMode = DEFAULT_LATCH_MODE
    latch_probation_packets: int = DEFAULT_PROBATION_PACKETS
    latch_probation_time: float = DEFAULT_PROBATION_TIME
    latch_relearn_after: float = DEFAULT_RELEARN_AFTER
    clock_rate: int = 8000
    payload_type: int = 0
    cname: str | None = None
    receive_queue_size: int = 256
    srtp: SrtpSessionKeys | None = None
    session_bandwidth: float = 64000.0
    rtcp_enabled: bool = True
    rtcp_min_time: float = RTCP_MIN_TIME

    def __attrs_post_init__(self) -> None:
        if self.latch not in LATCH_MODES:
            raise RtpError(f"latch mode {self.latch!r} is not one of {LATCH_MODES}")
        rtp = self.remote_rtp
        rtcp_derived = rtp is not None and self.remote_rtcp is None and not self.rtcp_mux
        if rtcp_derived and rtp is not None and rtp[1] >= 0xFFFF:
            # RFC 3550 §11: RTCP on the next higher port, which must exist.
            raise RtpError(f"remote RTP port {rtp[1]} leaves no port for RTCP")

    def new_latch(self) -> SourceLatch:
        """The :class:`SourceLatch` these settings describe (one per session)."""
        return SourceLatch(
            mode=self.latch,
            rtcp_mux=self.rtcp_mux,
            follow=self.symmetric_rtp,
            probation_packets=self.latch_probation_packets,
            probation_time=self.latch_probation_time,
            relearn_after=self.latch_relearn_after,
        )


class _Protocol(asyncio.DatagramProtocol):
    """Feeds a transport's datagrams to the session synchronously (no task per packet)."""

    def __init__(self, session: RtpSession, on_datagram: Callable[[bytes, Any], None]) -> None:
        self._session = session
        self.datagram_received = on_datagram  # type: ignore[method-assign,assignment]

    def error_received(self, exc: Exception) -> None:
        self._session.receive_errors += 1  # ICMP errors etc.: the transport stays open


@attrs.define(eq=False, init=False)
class RtpSession:
    """An RTP session on a UDP socket pair (or one socket with rtcp-mux).

    Open it with :func:`open_rtp_session`. Sending (:meth:`send_payload`) is
    synchronous; received packets go to a handler or a bounded queue.
    """

    config: RtpSessionConfig
    core: RtpSessionCore
    local_rtp_address: Address
    local_rtcp_address: Address
    outgoing_filter: Callable[[bytes], bool] | None
    closed: bool
    _clock: Callable[[], float]
    _handler: PacketHandler | None
    _rtcp_handler: RtcpHandler | None
    _srtp: SrtpContext | None
    _rtp_sock: socket.socket
    _rtcp_sock: socket.socket | None
    _port: int | None
    _rtcp_out: socket.socket
    _latch: SourceLatch
    _opened_at: float
    _queue_send: Any
    _queue_recv: Any
    _readers: Readers | None
    _transports: list[asyncio.BaseTransport]
    _rtcp_handle: asyncio.TimerHandle | None
    _udp: list[anyio.abc.UDPSocket]
    send_errors: int
    receive_errors: int
    handler_errors: int

    def __init__(
        self,
        config: RtpSessionConfig,
        core: RtpSessionCore,
        clock: Callable[[], float],
        handler: PacketHandler | None,
        sockets: SessionSockets,
    ) -> None:
        self.config = config
        self.core = core
        self._clock = clock
        self._handler = handler
        self._rtcp_handler = None
        self._srtp = SrtpContext(config.srtp.local, config.srtp.remote) if config.srtp else None
        self._rtp_sock, self._rtcp_sock, self._port, rtp_port = sockets
        host = local_host(config.local_host, self._rtp_sock)
        self.local_rtp_address = (host, rtp_port)
        self.local_rtcp_address = (host, rtp_port if self._rtcp_sock is None else rtp_port + 1)
        self.outgoing_filter = None
        self.closed = False
        self._latch = core.latch
        self._opened_at = clock()
        self._readers = None
        self._transports = _NO_TRANSPORTS
        self._rtcp_handle = None
        self._udp = []
        self.send_errors = 0
        self.receive_errors = 0
        self.handler_errors = 0
        # The receive queue is created on first use: a session with a packet handler
        # never needs one.
        self._queue_send = self._queue_recv = None
        self._rtcp_out = self._rtcp_sock or self._rtp_sock
        if config.remote_rtp is not None:
            self.set_remote(config.remote_rtp, config.remote_rtcp)

    # -- set-up ------------------------------------------------------------------------

    def _start_asyncio(self, loop: asyncio.AbstractEventLoop) -> None:
        # Readiness callbacks and a loop timer for RTCP: no transport and no task (their
        # set-up and teardown are a measurable share of a short call at high call rates).
        readers = readers_for(loop)
        readers.add(self._rtp_sock.fileno(), self._on_rtp_readable)
        self._readers = readers
        if self._rtcp_sock is not None:
            readers.add(self._rtcp_sock.fileno(), self._on_rtcp_readable)
        if self.config.rtcp_enabled:
            self.core.start(self._clock())
            self._arm_rtcp(loop)

    # hot path: one datagram per readiness callback, as asyncio's own datagram transport
    # reads (the loop calls again while more are queued; draining until EAGAIN would cost
    # a failing recvfrom and an exception per wake-up at 50 packets/s).

    def _on_rtp_readable(self) -> None:
        try:
            data, addr = self._rtp_sock.recvfrom(_DATAGRAM_MAX_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # e.g. an ICMP error reported on the socket: keep reading
            self.receive_errors += 1
            return
        self._on_rtp_datagram(data, addr)

    def _on_rtcp_readable(self) -> None:
        sock = self._rtcp_sock
        if sock is None:
            return
        try:
            data, addr = sock.recvfrom(_DATAGRAM_MAX_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.receive_errors += 1
            return
        self._on_rtcp_datagram(data, addr)

    async def _start_transports(self, loop: asyncio.AbstractEventLoop) -> None:
        # Loops that cannot watch a socket (Windows' proactor loop has no add_reader):
        # callback datagram transports feed the same receive path.
        self._transports = []
        for sock, on_datagram in (
            (self._rtp_sock, self._on_rtp_datagram),
            (self._rtcp_sock, self._on_rtcp_datagram),
        ):
            if sock is not None:
                transport, _ = await loop.create_datagram_endpoint(
                    functools.partial(_Protocol, self, on_datagram), sock=sock
                )
                self._transports.append(transport)
        if self.config.rtcp_enabled:
            self.core.start(self._clock())
            self._arm_rtcp(loop)

    async def _start_trio(self, tg: anyio.abc.TaskGroup) -> None:
        udp = await anyio.abc.UDPSocket.from_socket(self._rtp_sock)
        self._udp.append(udp)
        tg.start_soon(self._reader, udp, self._on_rtp_datagram)
        if self._rtcp_sock is not None:
            rtcp_udp = await anyio.abc.UDPSocket.from_socket(self._rtcp_sock)
            self._udp.append(rtcp_udp)
            tg.start_soon(self._reader, rtcp_udp, self._on_rtcp_datagram)
        if self.config.rtcp_enabled:
            self.core.start(self._clock())
            tg.start_soon(self._rtcp_timer)

    async def _reader(
        self, udp: anyio.abc.UDPSocket, on_datagram: Callable[[bytes, Any], None]
    ) -> None:
        while not self.closed:
            try:
                data, addr = await udp.receive()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
                return
            except OSError:  # e.g. an ICMP error reported on the socket: keep reading
                self.receive_errors += 1
                continue
            on_datagram(data, addr)

    def _arm_rtcp(self, loop: asyncio.AbstractEventLoop) -> None:
        deadline = self.core.get_timer()
        if deadline is None or self.closed:
            self._rtcp_handle = None
            return
        self._rtcp_handle = loop.call_later(
            max(0.0, deadline - self._clock()), self._on_rtcp_due, loop
        )

    def _on_rtcp_due(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.closed:
            return
        try:
            data = self.core.handle_timer(self._clock())
            if data is not None:
                self._emit_rtcp(data)
        finally:
            self._arm_rtcp(loop)

    async def _rtcp_timer(self) -> None:
        while True:
            deadline = self.core.get_timer()
            if deadline is None:
                return
            await anyio.sleep(max(0.0, deadline - self._clock()))
            if self.closed:
                return
            data = self.core.handle_timer(self._clock())
            if data is not None:
                self._emit_rtcp(data)

    # -- receiving ---------------------------------------------------------------------

    def _on_rtp_datagram(self, data: bytes, addr: Any) -> None:
        if self.closed:
            return
        if self.config.rtcp_mux and is_rtcp(data):
            self._on_rtcp_datagram(data, addr)
            return
        now = self._clock()
        if self._srtp is not None:
            try:
                data = self._srtp.unprotect_rtp(data)
            except SrtpError:
                self.core.srtp_failures += 1
                return
        # Symmetric RTP (RFC 4961) within the latch's rules: the core accepts the source
        # (or drops and counts it) and moves the send destination when it latches.
        packet = self.core.receive_rtp(data, now, addr)
        if packet is None:
            return
        handler = self._handler
        if handler is not None:
            try:
                handler(packet, now)
            except Exception:
                self._handler_failed("packet")
            return
        send = self._queue_send
        if send is None:
            send = self._make_queue()
        try:
            send.send_nowait(packet)
        except anyio.WouldBlock:
            self.core.receive_queue_drops += 1
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.core.receive_queue_drops += 1

    def _on_rtcp_datagram(self, data: bytes, addr: Any) -> None:
        if self.closed:
            return
        if self._srtp is not None:
            try:
                data = self._srtp.unprotect_rtcp(data)
            except SrtpError:
                self.core.srtp_failures += 1
                return
        now = self._clock()
        packets = self.core.receive_rtcp(data, now, addr)
        if not packets:
            return
        if self._rtcp_handler is not None:
            try:
                self._rtcp_handler(packets, now)
            except Exception:
                self._handler_failed("RTCP")

    def _handler_failed(self, kind: str) -> None:
        # An exception escaping datagram_received would make asyncio close the transport
        # (and end the trio reader): count and log it, keep the session running.
        self.handler_errors += 1
        if self.handler_errors <= 10:
            _LOG.exception("RTP session %s handler raised", kind)

    def _make_queue(self) -> Any:
        self._queue_send, self._queue_recv = anyio.create_memory_object_stream[RtpPacket](
            self.config.receive_queue_size
        )
        return self._queue_send

    async def receive(self) -> RtpPacket:
        """The next received packet (when no handler is set)."""
        if self._queue_recv is None:
            if self.closed:
                raise RtpSessionClosedError("RTP session is closed")
            self._make_queue()
        try:
            packet: RtpPacket = await self._queue_recv.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise RtpSessionClosedError("RTP session is closed") from None
        return packet

    def __aiter__(self) -> AsyncIterator[RtpPacket]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[RtpPacket]:
        while True:
            try:
                yield await self.receive()
            except RtpSessionClosedError:
                return

    def set_packet_handler(self, handler: PacketHandler | None) -> None:
        """Deliver packets to ``handler(packet, arrival)`` from the datagram callback.

        With ``None``, packets go to the bounded queue read by :meth:`receive`.
        """
        self._handler = handler

    def set_rtcp_handler(self, handler: RtcpHandler | None) -> None:
        """Also hand every valid received compound RTCP to ``handler(packets, arrival)``.

        The core has already accounted it (statistics, RTT); use this to react to BYE,
        APP or XR packets.
        """
        self._rtcp_handler = handler

    @property
    def srtp_active(self) -> bool:
        """True while RTP and RTCP are protected with SRTP/SRTCP (RFC 3711)."""
        return self._srtp is not None

    def set_srtp(self, keys: SrtpSessionKeys | None) -> None:
        """Start, re-key or stop SRTP on an open session (SDES keys from offer/answer).

        A session opens before its offer/answer completes (the SDP names its port), so
        the keys come later, and a re-INVITE may change them (RFC 4568 §7.1.4). Only a
        direction whose key changed is re-keyed (see :meth:`SrtpContext.rekey`). With
        SRTP on, a received packet that fails authentication is dropped and counted in
        ``statistics().srtp_failures``, never delivered.

        Args:
            keys: our key (protects what we send) and the peer's (authenticates and
                decrypts what we receive); None sends and accepts plain RTP again.

        Raises:
            SrtpError: libsrtp refused a key (the previous keys stay in use).
        """
        if keys is None:
            self._srtp = None
        elif self._srtp is None:
            self._srtp = SrtpContext(keys.local, keys.remote)
        else:
            self._srtp.rekey(keys.local, keys.remote)

    # -- sending -----------------------------------------------------------------------

    @property
    def ssrc(self) -> int:
        """Our current SSRC (changes after an SSRC collision)."""
        return self.core.ssrc

    @property
    def remote_rtp_address(self) -> Address | None:
        """Where RTP is sent: the signalled address, or the latched source."""
        return self._latch.rtp_target

    @property
    def remote_rtcp_address(self) -> Address | None:
        """Where RTCP is sent: the signalled address, or the latched source."""
        return self._latch.rtcp_target

    def set_remote(self, rtp: Address, rtcp: Address | None = None) -> None:
        """Set the signalled remote (SDP); the latch may later move to the peer's source.

        A changed address starts a new latching probation; the same one again keeps
        the latched source.

        Args:
            rtp: the remote RTP address; the host must be an IP literal.
            rtcp: the remote RTCP address (default: RTP port + 1, or the RTP address
                with rtcp-mux).

        Raises:
            RtpError: a host name (it would be resolved on every send, blocking the
                loop), an address of the other IP family than the local socket, or a
                port (also the derived RTCP port) outside 1-65535.
        """
        local_v6 = ":" in self.local_rtp_address[0]  # (socket.family is a slow property)
        for addr in (rtp, rtcp):
            host = addr[0] if isinstance(addr, tuple) and addr else None
            if isinstance(host, str) and (":" in host) != local_v6:
                raise RtpError(f"remote {host!r} is not of the local socket's address family")
        self._latch.set_remote(rtp, rtcp)  # validates the rest (RtpError)

    def last_activity(self) -> float | None:
        """When the last accepted RTP or RTCP packet arrived, by this session's clock.

        See :meth:`RtpSessionCore.last_activity`; None when nothing arrived yet.
        """
        return self.core.last_activity()

    def media_idle(self, now: float | None = None, rtcp_counts: bool = True) -> float:
        """Seconds since the last accepted RTP (or RTCP) packet, or since opening.

        For a media inactivity timeout in the session layer (no timer runs here).
        On hold only RTCP flows: keep ``rtcp_counts`` True then; False measures RTP
        alone (an active call whose RTP stopped).

        Args:
            now: the current time by this session's clock (read if omitted).
            rtcp_counts: whether received RTCP counts as activity.
        """
        core = self.core
        last = core.last_activity() if rtcp_counts else core.last_rtp_received
        if now is None:
            now = self._clock()
        return now - (self._opened_at if last is None else last)

    def send_payload(
        self,
        payload: bytes,
        timestamp: int,
        marker: bool = False,
        payload_type: int | None = None,
        now: float | None = None,
    ) -> None:
        """Packetise and send one payload, synchronously (no await).

        Args:
            payload: encoded media (e.g. 160 bytes of G.711).
            timestamp: media time in clock units since the stream start.
            marker: the RTP marker bit (start of a talkspurt).
            payload_type: overrides the configured payload type.
            now: the current time if the caller already has it (saves a clock read).
        """
        if self.closed:
            raise RtpSessionClosedError("RTP session is closed")
        addr = self._latch.rtp_target
        if addr is None:
            return
        data = self.core.build_rtp(
            payload, timestamp, self._clock() if now is None else now, marker, payload_type
        )
        if self._srtp is not None:
            try:
                data = self._srtp.protect_rtp(data)
            except SrtpError as exc:  # e.g. the key's packet limit: lost, counted
                self._send_failed(exc)
                return
        flt = self.outgoing_filter
        if flt is not None and not flt(data):
            return
        try:
            self._rtp_sock.sendto(data, addr)
        except Exception as exc:  # never into the loop: see _send_failed
            self._send_failed(exc)

    def _emit_rtcp(self, data: bytes) -> None:
        addr = self._latch.rtcp_target
        if addr is None:
            return
        if self._srtp is not None:
            try:
                data = self._srtp.protect_rtcp(data)
            except SrtpError as exc:  # raised from the RTCP timer it would end the trio task
                self._send_failed(exc)
                return
        try:
            self._rtcp_out.sendto(data, addr)
        except Exception as exc:  # never into the loop: see _send_failed
            self._send_failed(exc)

    def _send_failed(self, exc: Exception) -> None:
        # A full buffer or an ICMP error (OSError) loses the datagram; a bad destination
        # (OverflowError, ValueError, TypeError) must not escape either: raised from a
        # loop callback or the trio RTCP task it would end the task group, the process.
        self.send_errors += 1
        if self.send_errors == 1:
            _LOG.warning("RTP session send failed (counted from now on): %r", exc)

    def send_rtcp_report(self) -> None:
        """Send an SR/RR + SDES now (reports are also sent on the RFC 3550 A.7 schedule)."""
        if self.closed:
            raise RtpSessionClosedError("RTP session is closed")
        self._emit_rtcp(self.core.build_report(self._clock()))

    async def send_dtmf(
        self,
        digit: str,
        duration: float = 0.1,
        volume: int = 10,
        payload_type: int = 101,
        packet_time: float = 0.02,
    ) -> None:
        """Send one RFC 4733 event, paced every ``packet_time`` seconds.

        The event timestamp follows the last media timestamp sent (one packet later).
        """
        rate = self.config.clock_rate
        interval = max(1, round(packet_time * rate))
        last = self.core.last_timestamp
        timestamp = 0 if last is None else last + interval
        packets = DtmfEncoder(packet_interval=interval, volume=volume).packets(
            digit, round(duration * rate)
        )
        start = anyio.current_time()
        for p in packets:
            await anyio.sleep_until(start + (p.offset - interval) / rate)
            if self.closed:
                return
            self.send_payload(p.payload, timestamp, p.marker, payload_type)

    def set_clock_rate(self, clock_rate: int) -> None:
        """Use ``clock_rate`` as the RTP timestamp clock from now on (the negotiated codec's).

        RFC 3550 §5.1: the timestamp clock is the payload format's (48000 for Opus, RFC
        7587 §4.1): interarrival jitter, RTCP timestamps and RFC 4733 event durations are
        counted in it. A session is opened before the codec is known, at 8000.

        Raises:
            ValueError: a rate that is not positive.
        """
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, got {clock_rate}")
        if clock_rate != self.config.clock_rate:
            self.config = attrs.evolve(self.config, clock_rate=clock_rate)
            self.core.set_clock_rate(clock_rate)

    def statistics(self) -> SessionStatistics:
        """A snapshot of the session's figures."""
        return self.core.statistics()

    # -- closing -----------------------------------------------------------------------

    def close(self) -> None:
        """Send an RTCP BYE, close the sockets and release the port (idempotent)."""
        if self.closed:
            return
        if self.config.rtcp_enabled:
            with contextlib.suppress(SrtpError):
                self._emit_rtcp(self.core.build_bye(self._clock()))
        self._shut()

    def _shut(self) -> None:
        # Everything close() does after the BYE (also undoes a failed start).
        self.closed = True
        if self._rtcp_handle is not None:
            self._rtcp_handle.cancel()
            self._rtcp_handle = None
        self._shut_readers()
        for transport in self._transports:
            transport.close()
        for sock in (self._rtp_sock, self._rtcp_sock):
            if sock is None or sock.fileno() < 0:
                continue
            if self._udp:
                anyio.notify_closing(sock)  # wake the trio reader before the fd goes away
            sock.close()
        if self._queue_send is not None:
            self._queue_send.close()
            self._queue_recv.close()
        if self._port is not None and self.config.port_allocator is not None:
            self.config.port_allocator.release(self._port)
            self._port = None

    def _shut_readers(self) -> None:
        readers = self._readers
        if readers is not None:
            self._readers = None
            readers.remove(self._rtp_sock.fileno())
            if self._rtcp_sock is not None:
                readers.remove(self._rtcp_sock.fileno())

    async def aclose(self) -> None:
        """Close the session (see :meth:`close`)."""
        self.close()
        for udp in self._udp:
            await udp.aclose()
