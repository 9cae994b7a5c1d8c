"""Binding RTP/RTCP socket pairs and naming their local address without a syscall."""

from __future__ import annotations

import socket

import pytest

from rvoip_rtp_core import PortAllocator, PortsExhaustedError
from rvoip_rtp_core._sockets import bind_session_sockets, local_host


def _close(*socks: socket.socket | None) -> None:
    for s in socks:
        if s is not None:
            s.close()


@pytest.mark.parametrize("mux", [False, True])
def test_ephemeral_pair_is_even_and_consecutive(mux: bool) -> None:
    rtp, rtcp, allocated, port = bind_session_sockets("127.0.0.1", 0, mux, None)
    try:
        assert allocated is None
        assert port % 2 == 0
        assert rtp.getsockname() == ("127.0.0.1", port)
        assert rtp.gettimeout() == 0.0  # non-blocking
        if mux:
            assert rtcp is None
        else:
            assert rtcp is not None
            assert rtcp.getsockname() == ("127.0.0.1", port + 1)
    finally:
        _close(rtp, rtcp)


def test_allocator_pair_and_exhaustion() -> None:
    allocator = PortAllocator(40000, 40002)
    rtp, rtcp, allocated, port = bind_session_sockets("127.0.0.1", 0, False, allocator)
    try:
        assert allocated == port
        assert allocator.in_use == {port}
        with pytest.raises(PortsExhaustedError):
            bind_session_sockets("127.0.0.1", 0, False, allocator)
    finally:
        _close(rtp, rtcp)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.000.0.1", "::1", "0:0::1", "localhost"])
def test_local_host_matches_getsockname(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, 0))
    except OSError:
        sock.close()
        pytest.skip(f"cannot bind {host}")
    with sock:
        expected = sock.getsockname()[0]
        assert local_host(host, sock) == expected
        assert local_host(host, sock) == expected  # cached or asked again: the same
