"""Binding an RTP/RTCP UDP socket pair: even RTP port, RTCP on the next one (RFC 3550 §11)."""

from __future__ import annotations

import socket

from ._errors import PortsExhaustedError
from ._ports import PortAllocator

__all__ = ["SessionSockets", "bind_session_sockets", "local_host"]

_EPHEMERAL_ATTEMPTS = 64
# One syscall less per socket than socket() + setblocking(False) where the flag exists.
_NONBLOCK_DGRAM = socket.SOCK_DGRAM | getattr(socket, "SOCK_NONBLOCK", 0)

# (RTP socket, RTCP socket or None with mux, port taken from the allocator or None, RTP port)
SessionSockets = tuple[socket.socket, socket.socket | None, int | None, int]
_HOSTS: dict[str, str] = {}


def local_host(host: str, sock: socket.socket) -> str:
    """The address ``sock`` is bound to, as ``getsockname`` spells it.

    An IP literal is normalised without a syscall (cached); anything else (a name, a
    scoped IPv6 address) asks the socket.
    """
    known = _HOSTS.get(host)
    if known is not None:
        return known
    name: str = sock.getsockname()[0]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        literal = socket.inet_ntop(family, socket.inet_pton(family, host))
    except (OSError, ValueError):
        return name
    if literal == name and len(_HOSTS) < 64:
        _HOSTS[host] = name
    return name


def _socket_for(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, _NONBLOCK_DGRAM)
    try:
        if not _NONBLOCK_DGRAM & ~socket.SOCK_DGRAM:
            sock.setblocking(False)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _bind_pair(host: str, port: int, mux: bool) -> tuple[socket.socket, socket.socket | None]:
    rtp = _socket_for(host, port)
    if mux:
        return rtp, None
    try:
        rtcp = _socket_for(host, port + 1)
    except OSError:
        rtp.close()
        raise
    return rtp, rtcp


def bind_session_sockets(
    host: str, port: int, mux: bool, allocator: PortAllocator | None
) -> SessionSockets:
    """Bind RTP (even port) and RTCP (next port, unless rtcp-mux).

    Returns the RTP socket, the RTCP socket (None with mux) and the port taken from
    ``allocator`` (None for an explicit or ephemeral port).

    Raises:
        PortsExhaustedError: no port pair could be bound.
        OSError: an explicit ``port`` could not be bound.
    """
    if port:
        rtp, rtcp = _bind_pair(host, port, mux)
        return rtp, rtcp, None, port
    if allocator is not None:
        for _ in range(allocator.capacity):
            port = allocator.acquire()
            try:
                rtp, rtcp = _bind_pair(host, port, mux)
            except OSError:
                allocator.release(port)  # held by another program: try the next pair
                continue
            return rtp, rtcp, port, port
        raise PortsExhaustedError(
            f"no bindable RTP port pair on {host} in {allocator.start}-{allocator.end}"
        )
    for _ in range(_EPHEMERAL_ATTEMPTS):
        rtp = _socket_for(host, 0)
        # RFC 3550 §11: RTP on an even port, RTCP on the next odd one.
        odd = rtp.getsockname()[1]
        if odd % 2:
            if mux:
                rtp.close()
                continue
            # The kernel gave an odd port: keep it for RTCP, try the even one below for RTP
            # (half of all draws; saves a socket per session set-up).
            try:
                even = _socket_for(host, odd - 1)
            except OSError:
                rtp.close()
                continue
            return even, rtp, None, odd - 1
        if mux:
            return rtp, None, None, odd
        try:
            rtcp = _socket_for(host, odd + 1)
        except OSError:
            rtp.close()
            continue
        return rtp, rtcp, None, odd
    raise PortsExhaustedError(f"could not bind an even ephemeral RTP port pair on {host}")
