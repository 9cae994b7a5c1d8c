"""Readiness callbacks: the per-loop epoll hub and the loop's own readers."""

from __future__ import annotations

import asyncio
import select
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from rvoip_rtp_core._readers import Readers, _EpollHub, _LoopReaders, readers_for


def _udp_pair() -> tuple[socket.socket, socket.socket]:
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (a, b):
        s.setblocking(False)
        s.bind(("127.0.0.1", 0))
    return a, b


async def _exercise(readers: Readers) -> None:
    a, b = _udp_pair()
    got: list[bytes] = []
    done = asyncio.Event()

    def on_readable() -> None:
        got.append(b.recv(2048))
        if len(got) == 3:
            done.set()

    try:
        readers.add(b.fileno(), on_readable)
        for i in range(3):
            a.sendto(bytes([i]), b.getsockname())
        await asyncio.wait_for(done.wait(), 5)
        assert got == [b"\x00", b"\x01", b"\x02"]
        readers.remove(b.fileno())
        readers.remove(b.fileno())  # removing twice is harmless
        a.sendto(b"late", b.getsockname())
        await asyncio.sleep(0.05)
        assert len(got) == 3  # no callback after removal
    finally:
        a.close()
        b.close()


def _run(
    factory: Callable[[], asyncio.AbstractEventLoop],
    test: Callable[[], Coroutine[Any, Any, None]],
) -> None:
    loop = factory()
    try:
        loop.run_until_complete(test())
    finally:
        loop.close()


def _loops() -> list[Callable[[], asyncio.AbstractEventLoop]]:
    loops: list[Callable[[], asyncio.AbstractEventLoop]] = [asyncio.SelectorEventLoop]
    try:
        import uvloop
    except ImportError:
        return loops
    loops.append(uvloop.new_event_loop)
    return loops


@pytest.mark.parametrize("factory", _loops())
def test_loop_readers(factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
    async def test() -> None:
        await _exercise(_LoopReaders(asyncio.get_running_loop()))

    _run(factory, test)


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux-only")
@pytest.mark.parametrize("factory", _loops())
def test_epoll_hub_is_shared_per_loop(factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
    async def test() -> None:
        loop = asyncio.get_running_loop()
        hub = readers_for(loop)
        assert isinstance(hub, _EpollHub)
        assert readers_for(loop) is hub
        await _exercise(hub)
        # The last socket removed closes the set: no descriptor stays behind.
        assert hub._epoll.closed
        assert readers_for(loop) is not hub

    _run(factory, test)
    other: list[Readers] = []

    async def again() -> None:
        other.append(readers_for(asyncio.get_running_loop()))

    _run(factory, again)
    assert isinstance(other[0], _EpollHub)


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux-only")
def test_epoll_hub_skips_a_socket_removed_by_an_earlier_callback() -> None:
    async def test() -> None:
        hub = readers_for(asyncio.get_running_loop())
        a, b = _udp_pair()
        c, d = _udp_pair()
        calls: list[str] = []

        def first() -> None:
            calls.append("b")
            b.recv(2048)
            hub.remove(d.fileno())  # the other ready socket goes away in the same batch

        def second() -> None:
            calls.append("d")
            d.recv(2048)
            hub.remove(b.fileno())

        try:
            hub.add(b.fileno(), first)
            hub.add(d.fileno(), second)
            a.sendto(b"x", b.getsockname())
            c.sendto(b"y", d.getsockname())
            await asyncio.sleep(0.05)
            assert calls in (["b"], ["d"])
        finally:
            hub.remove(b.fileno())
            hub.remove(d.fileno())
            for s in (a, b, c, d):
                s.close()

    _run(asyncio.SelectorEventLoop, test)
