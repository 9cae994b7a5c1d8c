"""The dialog layer's deadlines: one keyed heap (transaction-core's ``Deadlines``) for all.

Every record with a deadline (a 2xx awaiting its ACK, a reliable provisional awaiting its
PRACK, a completed INVITE absorbing retransmissions, a 491 retry, a CANCEL awaiting its
final response, a session timer) is a key with at most one deadline. The façade pops the
due keys and hands each back to the collaborator that owns its type.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from rvoip_transaction_core import Deadlines

__all__ = ["Timeline"]


class Timeline:
    """Keyed deadlines with a "did the earliest one move earlier?" flag for the driver.

    The driver arms its timer for :meth:`next`; afterwards only a deadline set before that
    can make the armed timer late, so :meth:`set` notes exactly that and
    :meth:`deadline_moved` lets the driver skip recomputing the next deadline after every
    message (hot path: most messages set no deadline earlier than the armed one).
    """

    __slots__ = ("_deadlines", "_moved", "_seen", "cancel", "get", "pop_due")

    def __init__(self) -> None:
        self._deadlines: Deadlines[object] = Deadlines()
        self._seen = math.inf
        self._moved = True
        # hot path: these need no bookkeeping here, so they are the heap's own methods.
        deadlines = self._deadlines
        self.cancel: Callable[[object], None] = deadlines.cancel
        """Forget a key's deadline (no error when it has none)."""
        self.get: Callable[[object], float | None] = deadlines.get
        """A key's deadline, or None."""
        self.pop_due: Callable[[float], list[object]] = deadlines.pop_due
        """The keys due at ``now`` (removed), earliest first."""

    def set(self, key: object, when: float) -> None:
        """Set (or move) ``key``'s deadline."""
        self._deadlines.set(key, when)
        if when < self._seen:
            self._moved = True

    def next(self) -> float | None:
        """The earliest deadline (remembered for :meth:`deadline_moved`)."""
        when = self._deadlines.next()
        self._seen = math.inf if when is None else when
        self._moved = False
        return when

    def deadline_moved(self) -> bool:
        """Whether a deadline earlier than the last :meth:`next` answer was set since."""
        return self._moved

    def __len__(self) -> int:
        return len(self._deadlines)

    def __contains__(self, key: object) -> bool:
        return key in self._deadlines
