"""Transports: one interface for UDP, TCP and TLS (RFC 3261 §18) at the I/O edge.

Every transport is started inside a task group with two synchronous callbacks:
``deliver(data, source)`` for each received datagram / framed message and
``on_error(txn_id, reason)`` for a send that failed. ``send(data, target, txn_id)`` never
blocks. UDP under asyncio is a callback `asyncio.DatagramProtocol` that feeds the layer
straight from ``datagram_received`` (PACKAGING-NOTES §3: ~3x cheaper than anyio's socket);
under trio it is anyio's UDP socket. TCP and TLS use anyio streams and sip-core's
`StreamFramer`, bounded by one `StreamLimits` settings object.

Rule (issue 10): no input from the network can end a listener, a task group or the
process. Every per-message path (the datagram callback, the trio UDP receive task, each
connection reader) catches everything one message raises, counts it (``deliver_errors``)
and carries on. Targets must be IP literals: a host name never reaches ``sendto`` or a
connect (each would resolve it synchronously or per packet); the layer that chooses a
target resolves names once, asynchronously.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import ssl
import struct
from collections import Counter
from collections.abc import Callable
from typing import Protocol

import anyio
import attrs
from anyio.abc import ByteStream, SocketAttribute, SocketListener, TaskGroup, UDPSocket
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from anyio.streams.tls import TLSStream

from rvoip_sip_core import KeepAlive, SipParseError, StreamFramer, is_ip_literal

from ._types import Peer

__all__ = [
    "Deliver",
    "OnError",
    "OnReject",
    "StreamLimits",
    "StreamTransport",
    "Transport",
    "UdpTransport",
    "is_ip_literal",
]

logger = logging.getLogger(__name__)

Deliver = Callable[[bytes, Peer], None]
OnError = Callable[[int | None, str], None]
# A stream message the framer refused: (its first bytes, source, status, reason).
OnReject = Callable[[bytes, Peer, int, str], None]

# accept() errors that mean "out of descriptors or memory": back off instead of spinning.
_ACCEPT_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


@attrs.frozen
class StreamLimits:
    """Limits of the TCP/TLS transports against exhaustion (issue 10), safe by default.

    What Kamailio's ``tcp_msg_read_timeout``, ``tcp_connection_lifetime`` and
    ``tcp_max_connections`` do, in one place.

    Attributes:
        message_read_timeout: a message must be complete within this many seconds of its
            first byte, else the connection is closed (one byte every 25 s must not hold
            a connection).
        idle_timeout: a connection with no complete message received (a CRLFCRLF
            keep-alive counts, RFC 5626 §3.5.1) and nothing sent for this long is closed;
            partial bytes do not reset it.
        connect_timeout: seconds for an outgoing TCP connect (TLS: including the handshake).
        tls_handshake_timeout: seconds an accepted connection has to finish its TLS
            handshake.
        max_connections: global cap on open plus handshaking connections; the effective
            cap is also kept ``fd_reserve`` below the soft ``RLIMIT_NOFILE``.
        max_connections_per_ip: cap on accepted (incoming) connections from one address.
        fd_reserve: descriptors left free for UDP sockets, RTP, files, logging.
        accept_backoff: first pause after accept() fails with EMFILE/ENFILE/ENOBUFS/ENOMEM;
            doubles up to ``accept_backoff_max`` and resets after a successful accept.
        accept_backoff_max: longest such pause.
        linger: seconds a connection closed after a framing error (400/413 answered) has
            to flush that answer before it is closed.
        reject_head_size: first bytes of a message kept while it is framed, to answer a
            framing error from its header section; a longer header section is closed
            unanswered.
    """

    message_read_timeout: float = 10.0
    idle_timeout: float = 64.0
    connect_timeout: float = 10.0
    tls_handshake_timeout: float = 10.0
    max_connections: int = 4096
    max_connections_per_ip: int = 64
    fd_reserve: int = 128
    accept_backoff: float = 0.05
    accept_backoff_max: float = 1.0
    linger: float = 2.0
    reject_head_size: int = 16384

    def connection_cap(self) -> int:
        """``max_connections``, lowered to stay ``fd_reserve`` below the soft fd limit."""
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY or soft <= 0:
            return self.max_connections
        return max(1, min(self.max_connections, soft - self.fd_reserve))


# Large enough for any UDP datagram, small enough to stay under glibc's mmap threshold.
DATAGRAM_READ_SIZE = 65535
# Source addresses whose Peer objects a UDP transport keeps for reuse.
PEER_CACHE_SIZE = 4096
# Linux getsockopt(SOL_SOCKET, SO_MEMINFO): nine u32 (include/uapi/linux/sock_diag.h);
# index 0 SK_MEMINFO_RMEM_ALLOC, 1 SK_MEMINFO_RCVBUF, 8 SK_MEMINFO_DROPS.
SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)
_MEMINFO = struct.Struct("9I")


class Transport(Protocol):
    """What the endpoint needs from a transport."""

    name: str
    stats: Counter[str]

    @property
    def reliable(self) -> bool:
        """True for stream transports (no retransmission timers, RFC 3261 §17)."""
        ...

    @property
    def local(self) -> Peer:
        """The bound address (raises RuntimeError before ``start``)."""
        ...

    async def start(self, task_group: TaskGroup, deliver: Deliver, on_error: OnError) -> None:
        """Bind and start receiving: ``deliver`` gets each message, ``on_error`` failures."""
        ...

    def send(self, data: bytes, target: Peer, txn_id: int | None = None) -> None:
        """Send (or queue on a stream) without blocking; failures go to ``on_error``."""
        ...

    async def aclose(self) -> None:
        """Close the sockets (and connections)."""
        ...


def tune_datagram_transport(transport: asyncio.BaseTransport) -> bool:
    """Lower the stdlib selector transport's 256 KiB read size (PACKAGING-NOTES §3).

    The stdlib loop allocates ``max_size`` bytes per datagram and shrinks them (3 extra
    syscalls). The attribute is private: only set it when it is there and an int.
    """
    current = getattr(transport, "max_size", None)
    if isinstance(current, int) and current > DATAGRAM_READ_SIZE:
        transport.max_size = DATAGRAM_READ_SIZE  # type: ignore[attr-defined]
        return True
    return False


class _DatagramProtocol(asyncio.DatagramProtocol):
    """Feeds received datagrams straight into the owner (no task, no queue)."""

    def __init__(self, owner: UdpTransport) -> None:
        self.owner = owner
        self.stats = owner.stats
        # Peer per source address: immutable, so one object serves every datagram from it.
        self.peers: dict[tuple[str | int, ...], Peer] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        # hot path: one call per datagram, straight into the layer.
        stats = self.stats
        stats["received"] += 1
        owner = self.owner
        if len(data) > owner.max_message_size:
            stats["dropped_too_large"] += 1
            return
        peer = self.peers.get(addr)
        if peer is None:
            if len(self.peers) >= PEER_CACHE_SIZE:
                self.peers.clear()  # bounded: a scan of many sources just refills it
            peer = self.peers[addr] = Peer("UDP", str(addr[0]), int(addr[1]))
        try:
            owner.deliver(data, peer)
        except Exception:
            # Outside any task: a failure here must not reach the event loop's handler.
            _deliver_failed(stats, peer)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors cannot be tied to a transaction on an unconnected socket.
        self.owner.stats["icmp_errors"] += 1


def _deliver_failed(stats: Counter[str], peer: Peer) -> None:
    """One message's path raised: count and log; the caller goes on with the next one."""
    stats["deliver_errors"] += 1
    logger.exception("a message from %s %s:%s failed", peer.transport, peer.host, peer.port)


def running_asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio loop we run on, or None under another backend (trio)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _noop_deliver(data: bytes, source: Peer) -> None:
    return None


def _noop_error(txn_id: int | None, reason: str) -> None:
    return None


def _not_started(data: bytes, address: tuple[str, int]) -> None:
    raise OSError("transport not started")


@attrs.define(eq=False)
class UdpTransport:
    """SIP over UDP (unreliable: the transactions retransmit)."""

    host: str = "127.0.0.1"
    port: int = 0
    max_message_size: int = 65535
    name: str = "UDP"
    stats: Counter[str] = attrs.field(factory=Counter)
    deliver: Deliver = _noop_deliver
    on_error: OnError = _noop_error
    _asyncio: asyncio.DatagramTransport | None = attrs.field(default=None, init=False)
    _socket: UDPSocket | None = attrs.field(default=None, init=False)
    _raw: socket.socket | None = attrs.field(default=None, init=False)
    _local: Peer | None = attrs.field(default=None, init=False)
    _sendto: Callable[[bytes, tuple[str, int]], object] = attrs.field(
        default=_not_started, init=False
    )
    # Target hosts already checked to be IP literals (bounded, like the Peer cache).
    _literals: set[str] = attrs.field(factory=set, init=False)
    # What receive_queue() reads SO_MEMINFO from (the loop's socket wrapper or the raw
    # socket); None before start, after close, or where the option is not supported.
    _meminfo: Callable[[int, int, int], bytes] | None = attrs.field(default=None, init=False)

    @property
    def reliable(self) -> bool:
        """UDP is unreliable."""
        return False

    @property
    def local(self) -> Peer:
        """The bound address."""
        if self._local is None:
            raise RuntimeError("transport not started")
        return self._local

    async def start(self, task_group: TaskGroup, deliver: Deliver, on_error: OnError) -> None:
        """Bind and start receiving (asyncio: protocol callbacks; trio: one receive task)."""
        self.deliver, self.on_error = deliver, on_error
        loop = running_asyncio_loop()
        if loop is not None:
            # The running loop may be uvloop (chosen by the application); we use it as is.
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _DatagramProtocol(self), local_addr=(self.host, self.port)
            )
            if tune_datagram_transport(transport):
                self.stats["read_size_tuned"] = 1
            self._asyncio = transport
            self._sendto = transport.sendto
            sockname = transport.get_extra_info("sockname")
            wrapped = transport.get_extra_info("socket")
            self._meminfo = getattr(wrapped, "getsockopt", None)
        else:
            sock = await anyio.create_udp_socket(local_host=self.host, local_port=self.port)
            self._socket = sock
            self._raw = sock.extra(SocketAttribute.raw_socket)
            self._sendto = self._raw.sendto
            self._meminfo = self._raw.getsockopt
            sockname = self._raw.getsockname()
            task_group.start_soon(self._receive_loop, sock)
        self._local = Peer("UDP", str(sockname[0]), int(sockname[1]))

    async def _receive_loop(self, sock: UDPSocket) -> None:
        peers: dict[tuple[str, int], Peer] = {}  # one immutable Peer per source, as on asyncio
        try:
            async for data, address in sock:
                self.stats["received"] += 1
                if len(data) > self.max_message_size:
                    self.stats["dropped_too_large"] += 1
                    continue
                peer = peers.get(address)
                if peer is None:
                    if len(peers) >= PEER_CACHE_SIZE:
                        peers.clear()
                    peer = peers[address] = Peer("UDP", address[0], address[1])
                try:
                    self.deliver(data, peer)
                except Exception:
                    _deliver_failed(self.stats, peer)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return

    def set_receive_buffer(self, size: int) -> int | None:
        """Ask for a receive buffer of ``size`` bytes (SO_RCVBUF); the size granted or None.

        The kernel caps the request at ``net.core.rmem_max`` (and reports it doubled).
        """
        sock = self._raw
        if sock is None and self._asyncio is not None:
            sock = self._asyncio.get_extra_info("socket")
        if sock is None:
            return None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
            return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        except (OSError, ValueError, TypeError):
            return None

    def receive_queue(self) -> tuple[int, int, int] | None:
        """The socket's receive queue: (bytes held, buffer size, datagrams dropped so far).

        What measures an overload's backlog (the kernel holds the datagrams the loop has
        not read yet; loop lag does not see them): one ``getsockopt(SO_MEMINFO)`` (Linux
        4.6+, ~1-2 us). None where that is not available (then nothing is measured).
        """
        meminfo = self._meminfo
        if meminfo is None:
            return None
        try:
            values = _MEMINFO.unpack(meminfo(socket.SOL_SOCKET, SO_MEMINFO, _MEMINFO.size))
        except (OSError, ValueError, TypeError, struct.error):
            self._meminfo = None  # not supported here: stop asking
            return None
        return values[0], values[1], values[8]

    def send(self, data: bytes, target: Peer, txn_id: int | None = None) -> None:
        """Send one datagram now; a failure goes to ``on_error`` (RFC 3261 §18.4).

        A target host that is not an IP literal (e.g. a Via ``maddr=some.name``) is
        refused and counted (``refused_not_ip_literal``): ``sendto`` would resolve it
        synchronously inside the event loop, on every packet.
        """
        host = target.host
        if host not in self._literals:  # hot path: one set lookup per datagram
            if not _literal_or_refused(self.stats, target):
                self.on_error(txn_id, f"UDP target {host[:60]!r} is not an IP address")
                return
            if len(self._literals) >= PEER_CACHE_SIZE:
                self._literals.clear()
            self._literals.add(host)
        try:
            # hot path: the started transport's sendto, bound once
            self._sendto(data, (host, target.port))
        except (BlockingIOError, InterruptedError):
            self.stats["dropped_send_would_block"] += 1
            return
        except (OSError, OverflowError, ValueError, TypeError) as exc:
            self.stats["send_errors"] += 1
            self.on_error(txn_id, f"UDP send to {host}:{target.port} failed: {exc}")
            return
        self.stats["sent"] += 1

    async def aclose(self) -> None:
        """Close the socket."""
        self._sendto = _not_started
        self._meminfo = None
        if self._asyncio is not None:
            self._asyncio.close()
            self._asyncio = None
        if self._socket is not None:
            await self._socket.aclose()
            self._socket = None
            self._raw = None


def _literal_or_refused(stats: Counter[str], target: Peer) -> bool:
    """True for an IP-literal target; else count and log the refusal."""
    if is_ip_literal(target.host):
        return True
    stats["refused_not_ip_literal"] += 1
    logger.warning(
        "refused to send to %s target %r: not an IP address (no DNS in the send path)",
        target.transport,
        target.host[:60],
    )
    return False


@attrs.define(eq=False)
class _Connection:
    """One TCP/TLS connection: a writer queue and (once connected) its stream.

    ``server_name`` is the TLS name an outgoing connection verified (RFC 5922 §7: the
    certificate is checked against the URI host, sent as SNI); None for incoming ones and
    for connections verified against the IP.
    """

    id: int
    remote: tuple[str, int]
    queue_size: int
    server_name: str | None = None
    incoming: bool = False
    stream: ByteStream | None = None
    closed: bool = False
    linger: bool = False
    last_activity: float = 0.0
    send_tx: MemoryObjectSendStream[tuple[bytes, int | None]] = attrs.field(init=False)
    send_rx: MemoryObjectReceiveStream[tuple[bytes, int | None]] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.send_tx, self.send_rx = anyio.create_memory_object_stream[tuple[bytes, int | None]](
            self.queue_size
        )


@attrs.define(eq=False)
class StreamTransport:
    """SIP over TCP, or TLS (``name="TLS"``; listens only when ``server_context`` is given).

    Connections are reused by remote address (and, for TLS, the verified server name),
    answered on the connection a request came on (RFC 3261 §18.2.2), and answer CRLFCRLF
    keep-alive pings with CRLF (RFC 5626 §3.5.1). ``limits`` bounds what a peer can hold:
    per-message read deadline, idle timeout, handshake timeout, global and per-IP
    connection caps, accept back-off. A message the framer refuses (no Content-Length,
    body over ``max_message_size``) is handed to ``on_reject`` (the endpoint answers
    400/413) and the connection is closed once that answer is flushed.
    """

    name: str = "TCP"
    host: str = "127.0.0.1"
    port: int = 0
    server_context: ssl.SSLContext | None = None
    client_context: ssl.SSLContext | None = None
    limits: StreamLimits = attrs.field(factory=StreamLimits)
    max_message_size: int = 65535
    send_queue_size: int = 256
    stats: Counter[str] = attrs.field(factory=Counter)
    deliver: Deliver = _noop_deliver
    on_error: OnError = _noop_error
    on_reject: OnReject | None = None
    _connections: dict[int, _Connection] = attrs.field(factory=dict, init=False)
    _by_address: dict[tuple[str, int, str | None], _Connection] = attrs.field(
        factory=dict, init=False
    )
    _per_ip: Counter[str] = attrs.field(factory=Counter, init=False)
    _handshaking: int = attrs.field(default=0, init=False)
    _cap: int = attrs.field(default=0, init=False)
    _next_id: int = attrs.field(default=1, init=False)
    _task_group: TaskGroup | None = attrs.field(default=None, init=False)
    _connect_tx: MemoryObjectSendStream[_Connection] | None = attrs.field(default=None, init=False)
    _listeners: list[SocketListener] = attrs.field(factory=list, init=False)
    _local: Peer | None = attrs.field(default=None, init=False)
    # The clock anyio uses, bound once: on asyncio the loop's, without the backend
    # lookup (sniffio) anyio.current_time() makes per call; read per message.
    _clock: Callable[[], float] = attrs.field(default=anyio.current_time, init=False)

    @property
    def reliable(self) -> bool:
        """Streams are reliable."""
        return True

    @property
    def local(self) -> Peer:
        """The listening address."""
        if self._local is None:
            raise RuntimeError("transport not started")
        return self._local

    async def start(self, task_group: TaskGroup, deliver: Deliver, on_error: OnError) -> None:
        """Listen and serve incoming connections in ``task_group``."""
        self.deliver, self.on_error = deliver, on_error
        self._cap = self.limits.connection_cap()
        loop = running_asyncio_loop()
        self._clock = loop.time if loop is not None else anyio.current_time
        self._task_group = task_group
        # send() may run in a datagram callback (no task: anyio cannot start tasks there),
        # so new connections are handed to one connector task through a memory stream.
        self._connect_tx, connect_rx = anyio.create_memory_object_stream[_Connection](
            self.send_queue_size
        )
        task_group.start_soon(self._connector, connect_rx, task_group)
        if self.name == "TLS" and self.server_context is None:
            # Client-only TLS: no listener; responses come back on our connections.
            self._local = Peer(self.name, self.host, self.port or 5061)
            return
        multi = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        self._listeners = [
            listener for listener in multi.listeners if isinstance(listener, SocketListener)
        ]
        sockname = multi.extra(SocketAttribute.local_address)
        assert isinstance(sockname, tuple)
        self._local = Peer(self.name, str(sockname[0]), int(sockname[1]))
        for listener in self._listeners:
            task_group.start_soon(self._accept_loop, listener, task_group)

    async def _accept_loop(self, listener: SocketListener, tg: TaskGroup) -> None:
        limits = self.limits
        backoff = limits.accept_backoff
        while True:
            try:
                stream = await listener.accept()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            except OSError as exc:
                self.stats["accept_errors"] += 1
                if exc.errno in _ACCEPT_EXHAUSTED:
                    # Out of descriptors: accept() would fail again at once (the pending
                    # connection stays queued); pause instead of spinning the loop.
                    self.stats["accept_backoffs"] += 1
                    await anyio.sleep(backoff)
                    backoff = min(backoff * 2, limits.accept_backoff_max)
                continue
            backoff = limits.accept_backoff
            tg.start_soon(self._accepted, stream)

    def _open_count(self) -> int:
        return len(self._connections) + self._handshaking

    def _register(
        self, remote: tuple[str, int], server_name: str | None = None, *, incoming: bool = False
    ) -> _Connection:
        conn = _Connection(self._next_id, remote, self.send_queue_size, server_name, incoming)
        self._next_id += 1
        self._connections[conn.id] = conn
        self._by_address[(remote[0], remote[1], server_name)] = conn
        if incoming:
            self._per_ip[remote[0]] += 1
        return conn

    def _unregister(self, conn: _Connection, reason: str) -> None:
        if conn.closed:
            return
        conn.closed = True
        self._connections.pop(conn.id, None)
        key = (conn.remote[0], conn.remote[1], conn.server_name)
        if self._by_address.get(key) is conn:
            del self._by_address[key]
        if conn.incoming:
            self._release_ip(conn.remote[0])
        conn.send_tx.close()
        # Whatever was still queued never reached the peer: tell the owners.
        while True:
            try:
                _data, txn_id = conn.send_rx.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
            self.stats["dropped_unsent"] += 1
            if txn_id is not None:
                self.on_error(txn_id, reason)
        conn.send_rx.close()

    def _release_ip(self, ip: str) -> None:
        left = self._per_ip[ip] - 1
        if left > 0:
            self._per_ip[ip] = left
        else:
            del self._per_ip[ip]

    async def _accepted(self, stream: ByteStream) -> None:
        try:
            remote = stream.extra(SocketAttribute.remote_address)
            assert isinstance(remote, tuple)
            ip, port = str(remote[0]), int(remote[1])
        except Exception:
            self.stats["accept_errors"] += 1
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            return
        limits = self.limits
        if self._open_count() >= self._cap:
            self.stats["refused_too_many_connections"] += 1
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            return
        if self._per_ip[ip] >= limits.max_connections_per_ip:
            self.stats["refused_too_many_connections_per_ip"] += 1
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            return
        if self.server_context is not None:
            # Counted against both caps while handshaking (a peer that never finishes
            # holds a descriptor until tls_handshake_timeout).
            self._handshaking += 1
            self._per_ip[ip] += 1
            try:
                with anyio.fail_after(limits.tls_handshake_timeout):
                    stream = await TLSStream.wrap(
                        stream, ssl_context=self.server_context, standard_compatible=False
                    )
            except (
                OSError,
                TimeoutError,
                ssl.SSLError,
                anyio.BrokenResourceError,
                anyio.EndOfStream,  # the peer closed during the handshake (e.g. refused our cert)
            ):
                self.stats["tls_handshake_failures"] += 1
                with anyio.CancelScope(shield=True):
                    await stream.aclose()
                return
            finally:
                self._handshaking -= 1
                self._release_ip(ip)
        self.stats["accepted"] += 1
        conn = self._register((ip, port), incoming=True)
        conn.stream = stream
        await self._run(conn)

    def send(self, data: bytes, target: Peer, txn_id: int | None = None) -> None:
        """Queue ``data`` on the target connection (opened or reused as needed).

        A new connection goes only to an IP literal (``refused_not_ip_literal``
        otherwise); over TLS, ``target.server_name`` (when set) is sent as SNI and the
        server certificate is verified against it (RFC 5922 §7), else against the IP.
        """
        conn = None
        if target.connection is not None:
            conn = self._connections.get(target.connection)
        if conn is None:
            conn = self._by_address.get((target.host, target.port, target.server_name))
        if conn is None:
            if self._connect_tx is None:
                self.on_error(txn_id, "transport not started")
                return
            if not _literal_or_refused(self.stats, target):
                self.on_error(txn_id, f"{self.name} target {target.host[:60]!r} is not an IP")
                return
            if self._open_count() >= self._cap:
                self.stats["refused_too_many_connections"] += 1
                self.on_error(txn_id, f"{self.name} connection limit reached")
                return
            server_name = target.server_name if self.name == "TLS" else None
            conn = self._register((target.host, target.port), server_name)
            try:
                self._connect_tx.send_nowait(conn)
            except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
                self.stats["dropped_connect_queue_full"] += 1
                self._unregister(conn, f"{self.name} too many pending connects")
                if txn_id is not None:
                    self.on_error(txn_id, f"{self.name} too many pending connects")
                return
        try:
            conn.send_tx.send_nowait((data, txn_id))
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.stats["dropped_send_queue_full"] += 1
            if txn_id is not None:
                self.on_error(txn_id, f"{self.name} send queue to {conn.remote} full")

    async def _connector(
        self, pending: MemoryObjectReceiveStream[_Connection], tg: TaskGroup
    ) -> None:
        async with pending:
            async for conn in pending:
                tg.start_soon(self._connect, conn)

    async def _connect(self, conn: _Connection) -> None:
        host, port = conn.remote
        try:
            with anyio.fail_after(self.limits.connect_timeout):
                if self.name == "TLS":
                    # RFC 5922 §7.3: verify the certificate against the name the target
                    # was resolved from (SNI, RFC 6066 §3), not the IP we connect to.
                    stream: ByteStream = await anyio.connect_tcp(
                        host,
                        port,
                        ssl_context=self.client_context or ssl.create_default_context(),
                        tls_hostname=conn.server_name,
                        tls_standard_compatible=False,
                    )
                else:
                    stream = await anyio.connect_tcp(host, port)
        except (OSError, TimeoutError, ssl.SSLError, anyio.BrokenResourceError) as exc:
            self.stats["connect_failures"] += 1
            self._unregister(conn, f"{self.name} connect to {host}:{port} failed: {exc}")
            return
        self.stats["connected"] += 1
        conn.stream = stream
        await self._run(conn)

    async def _run(self, conn: _Connection) -> None:
        assert conn.stream is not None
        conn.last_activity = self._clock()
        reason = "connection closed"
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._writer, conn, tg.cancel_scope)
                try:
                    reason = await self._reader(conn)
                except Exception as exc:
                    # Rule (issue 10): nothing a peer sends ends more than its connection.
                    self.stats["reader_errors"] += 1
                    logger.exception("%s connection reader failed", self.name)
                    reason = f"connection reader failed: {exc!r}"[:200]
                if conn.linger:
                    # Let the writer flush the 400/413 just queued, then stop it.
                    conn.send_tx.close()
                    tg.cancel_scope.deadline = anyio.current_time() + self.limits.linger
                else:
                    tg.cancel_scope.cancel()
        finally:
            self._unregister(conn, reason)
            with anyio.CancelScope(shield=True):
                await conn.stream.aclose()

    async def _reader(self, conn: _Connection) -> str:
        assert conn.stream is not None
        framer = StreamFramer(max_head=self.max_message_size, max_body=self.max_message_size)
        remote = conn.remote
        limits = self.limits
        clock = self._clock
        peer = Peer(self.name, remote[0], remote[1], conn.id)
        # When the first byte of the message still being framed arrived (None: between
        # messages), and its first keep bytes (to answer a framing error from its
        # header section without re-copying a trickled body).
        started: float | None = None
        head = b""
        keep = limits.reject_head_size
        while True:
            now = clock()
            wait = conn.last_activity + limits.idle_timeout - now
            if wait <= 0:
                self.stats["closed_idle"] += 1
                return "idle connection closed"
            if started is not None:
                read_left = started + limits.message_read_timeout - now
                if read_left <= 0:
                    # Kamailio's tcp_msg_read_timeout: a trickled message holds no socket.
                    self.stats["closed_read_timeout"] += 1
                    return "message not complete within the read timeout"
                wait = min(wait, read_left)
            data = b""
            with anyio.move_on_after(wait):
                try:
                    data = await conn.stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return "connection closed by peer"
                except (OSError, ssl.SSLError) as exc:
                    return f"connection error: {exc}"
            if not data:
                continue  # a deadline passed: checked at the top of the loop
            now = clock()
            try:
                frames = framer.feed(data)
            except SipParseError as exc:
                # RFC 3261 §18.3: a stream that cannot be framed is closed; the request
                # is answered first when its header section can be read (413 for a body
                # over the limit, 400 for a missing Content-Length).
                self.stats["closed_unframeable"] += 1
                self._reject(head + data if started is not None else data, peer, exc)
                conn.linger = True
                return f"stream framing error: {exc.reason}"
            buffered = framer.buffered
            if not buffered:
                started = None
                head = b""
            elif frames or started is None:
                # A new message began in this chunk: it is the chunk's unframed tail.
                started = now
                head = data[-buffered:][:keep]
            elif len(head) < keep:
                head += data[: keep - len(head)]
            for frame in frames:
                conn.last_activity = now  # only a complete message resets the idle timer
                if isinstance(frame, KeepAlive):
                    if frame.ping:
                        # RFC 5626 §3.5.1: answer a CRLFCRLF ping with a CRLF pong.
                        self.stats["keepalive_pongs"] += 1
                        self.send(b"\r\n", peer)
                    continue
                self.stats["received"] += 1
                try:
                    self.deliver(frame, peer)
                except Exception:
                    _deliver_failed(self.stats, peer)

    def _reject(self, head: bytes, peer: Peer, exc: SipParseError) -> None:
        """Hand a message the framer refused to ``on_reject`` (it answers 400/413)."""
        on_reject = self.on_reject
        if on_reject is None or not head:
            return
        try:
            on_reject(head, peer, exc.status, exc.reason)
        except Exception:
            _deliver_failed(self.stats, peer)

    async def _writer(self, conn: _Connection, scope: anyio.CancelScope) -> None:
        assert conn.stream is not None
        async for data, txn_id in conn.send_rx:
            try:
                await conn.stream.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                self.stats["send_errors"] += 1
                if txn_id is not None:
                    self.on_error(txn_id, f"{self.name} send to {conn.remote} failed: {exc}")
                scope.cancel()
                return
            self.stats["sent"] += 1
            conn.last_activity = self._clock()

    async def aclose(self) -> None:
        """Stop listening and close every connection."""
        for listener in self._listeners:
            await listener.aclose()
        self._listeners = []
        if self._connect_tx is not None:
            self._connect_tx.close()
        for conn in list(self._connections.values()):
            if conn.stream is not None:
                await conn.stream.aclose()
            self._unregister(conn, "transport closed")
