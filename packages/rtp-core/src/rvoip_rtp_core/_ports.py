"""An allocator of even RTP ports (RTCP on the next odd one) over a configured range."""

from __future__ import annotations

import attrs

from ._errors import PortsExhaustedError

__all__ = ["PortAllocator"]


@attrs.define(eq=False)
class PortAllocator:
    """Hands out even ports round robin; RTP ``port`` and RTCP ``port + 1`` lie in ``[start, end)``.

    RFC 3550 §11: RTP uses an even port and RTCP the next higher (odd) one. The
    allocator only tracks what this process handed out; a port another program holds
    is skipped by the session driver (which releases it and asks again).
    """

    start: int = 10000
    end: int = 20000
    _in_use: set[int] = attrs.field(factory=set, init=False)
    _cursor: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        if self.start % 2:
            self.start += 1
        if not 0 < self.start < self.end <= 65536:
            raise ValueError(f"invalid RTP port range {self.start}-{self.end}")
        self._cursor = self.start

    @property
    def capacity(self) -> int:
        """How many port pairs the range holds."""
        return (self.end - self.start) // 2

    @property
    def in_use(self) -> frozenset[int]:
        """The even ports currently handed out."""
        return frozenset(self._in_use)

    def acquire(self) -> int:
        """Return a free even port; raises :class:`PortsExhaustedError` when none is left."""
        if len(self._in_use) >= self.capacity:
            raise PortsExhaustedError(
                f"all {self.capacity} RTP port pairs in {self.start}-{self.end} are in use"
            )
        port = self._cursor
        for _ in range(self.capacity):
            candidate = port
            port += 2
            if port + 1 >= self.end:
                port = self.start
            if candidate not in self._in_use and candidate + 1 < self.end:
                self._in_use.add(candidate)
                self._cursor = port
                return candidate
        raise PortsExhaustedError(
            f"all {self.capacity} RTP port pairs in {self.start}-{self.end} are in use"
        )

    def release(self, port: int) -> None:
        """Give a port back (releasing an unknown port is a no-op)."""
        self._in_use.discard(port)
