"""Readiness callbacks for the sessions' sockets on an asyncio-family event loop.

On Linux all sessions of a loop share one epoll set that the loop watches as a single
reader: registering a socket is one ``epoll_ctl`` at open and one at close, where the
loop's own ``add_reader`` costs uvloop four syscalls to add and three to remove (libuv's
pollability probe) and the stdlib loop its selector bookkeeping in Python. One wake-up of
the loop also serves every socket that is ready. The set exists while the loop has open
sessions (its descriptor is closed with the last one). Elsewhere the loop's readers are used.
"""

from __future__ import annotations

import asyncio
import select
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = ["Readers", "readers_for"]

_MAX_EVENTS = 64  # sockets served per wake-up; the rest stay ready for the next one


class Readers(Protocol):
    """Where a session registers ``callback()`` for "fd is readable"."""

    def add(self, fd: int, callback: Callable[[], None]) -> None:
        """Call ``callback()`` from the loop whenever ``fd`` is readable."""

    def remove(self, fd: int) -> None:
        """Stop watching ``fd`` (before it is closed)."""


class _LoopReaders:
    """The event loop's own ``add_reader`` / ``remove_reader``."""

    __slots__ = ("_loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def add(self, fd: int, callback: Callable[[], None]) -> None:
        self._loop.add_reader(fd, callback)

    def remove(self, fd: int) -> None:
        if not self._loop.is_closed():
            self._loop.remove_reader(fd)


class _EpollHub:
    """One epoll set per loop, registered with the loop as one reader while it has sockets."""

    __slots__ = ("_callbacks", "_epoll", "_loop", "_poll", "_register", "_unregister")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)  # _HUBS must not keep the loop alive
        self._epoll = select.epoll()
        self._poll = self._epoll.poll
        self._register = self._epoll.register
        self._unregister = self._epoll.unregister
        self._callbacks: dict[int, Callable[[], None]] = {}
        try:
            loop.add_reader(self._epoll.fileno(), self._on_ready)
        except BaseException:
            self._epoll.close()
            raise

    def add(self, fd: int, callback: Callable[[], None]) -> None:
        self._register(fd, select.EPOLLIN)
        self._callbacks[fd] = callback

    def remove(self, fd: int) -> None:
        callbacks = self._callbacks
        if callbacks.pop(fd, None) is None:
            return
        self._unregister(fd)
        if not callbacks:
            self._close()

    def _close(self) -> None:
        # The last socket is gone: give the descriptor back (a later session makes a new set).
        loop = self._loop()
        if loop is not None:
            if _HUBS.get(loop) is self:
                del _HUBS[loop]
            if not loop.is_closed():
                loop.remove_reader(self._epoll.fileno())
        self._epoll.close()

    def _on_ready(self) -> None:
        # hot path: one epoll_wait(0) for every ready socket of the loop.
        callbacks = self._callbacks
        for fd, _ in self._poll(0, _MAX_EVENTS):
            callback = callbacks.get(fd)
            if callback is not None:
                callback()


_HUBS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _EpollHub] = weakref.WeakKeyDictionary()
_HAS_EPOLL = hasattr(select, "epoll")


def readers_for(loop: asyncio.AbstractEventLoop) -> Readers:
    """The reader registry for the sockets of a new session on ``loop``."""
    if not _HAS_EPOLL:
        return _LoopReaders(loop)
    hub = _HUBS.get(loop)
    if hub is None:
        hub = _HUBS[loop] = _EpollHub(loop)
    return hub
