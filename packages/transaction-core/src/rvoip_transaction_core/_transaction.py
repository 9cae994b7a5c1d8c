"""The interpreter of the transition tables: one `Transaction` per RFC 3261 §17 transaction.

A transaction owns no task and no clock: `step(event, now, ...)` applies one table row and
asks its owner (the `TransactionLayer`, through the small `Owner` protocol) to transmit,
deliver to the TU, and (re)schedule timers on the layer's single deadline heap.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol

import attrs

from rvoip_sip_core import Request, Response

from ._deadlines import Deadlines
from ._matching import trying_bytes
from ._tables import ARMS, TIMER_EVENT, Machine, MachineAction, MachineEvent, State, Timer
from ._types import RELIABLE_TRANSPORTS, Peer, TimerConfig, TransactionUsageError

__all__ = ["Owner", "Transaction", "event_for_response", "event_for_tu_response"]


class Owner(Protocol):
    """What a transaction needs from the layer that owns it."""

    def _transmit(self, data: bytes, target: Peer, txn: Transaction) -> None: ...
    def _deliver(self, txn: Transaction, message: Request | Response, source: Peer) -> None: ...
    def _timeout(self, txn: Transaction, timer: Timer) -> None: ...
    def _transport_error(self, txn: Transaction, reason: str) -> None: ...

    deadlines: Deadlines[tuple[Transaction, Timer]]

    def _build_ack(self, txn: Transaction, response: Response) -> bytes: ...
    def _terminated(self, txn: Transaction) -> None: ...


def event_for_response(status: int) -> MachineEvent:
    """Classify a received response for a client machine."""
    if status < 200:
        return MachineEvent.RECV_1XX
    if status < 300:
        return MachineEvent.RECV_2XX
    return MachineEvent.RECV_FINAL


def event_for_tu_response(status: int) -> MachineEvent:
    """Classify a response the TU passes to a server machine."""
    if status < 200:
        return MachineEvent.TU_1XX
    if status < 300:
        return MachineEvent.TU_2XX
    return MachineEvent.TU_FINAL


@attrs.define(eq=False)
class Transaction:
    """One client or server transaction, driven by its `Machine` table.

    ``peer`` is the target (client) or the source to answer (server). ``armed`` holds the
    timers running; their deadlines live in the layer's `Deadlines` heap (keyed by
    ``(transaction, timer)``), which drops a cancelled one lazily.
    """

    id: int
    machine: Machine
    request: Request | None
    peer: Peer
    key: Hashable
    owner: Owner
    config: TimerConfig
    state: State
    request_bytes: bytes = b""
    response_bytes: bytes | None = None
    response_target: Peer | None = None
    ack_bytes: bytes | None = None
    armed: set[Timer] = attrs.Factory(set)
    intervals: dict[Timer, float] = attrs.Factory(dict)
    merge_key: Hashable | None = None
    to_tag: str | None = None
    cancels: int | None = None
    failure_reason: str = "transport error"
    finished: bool = False
    sent_by: tuple[str, int | None] | None = None
    #: INVITE server: the 100 Trying was deferred (``TimerConfig.trying_after``) and is
    #: still owed until the TU's first response, the 100 timer, or an INVITE retransmission.
    trying_owed: bool = False
    #: True for the two client machines (read per message: computed once).
    is_client: bool = attrs.field(
        init=False, default=attrs.Factory(lambda self: self.machine.name.endswith("client"), True)
    )

    @property
    def reliable(self) -> bool:
        """True over TCP/TLS: no retransmit timers, D/I/J/K are zero."""
        return self.peer.reliable

    def allows(self, event: MachineEvent) -> bool:
        """Whether the table has a row for ``event`` in the current state."""
        return (self.state, event) in self.machine.table

    def start(self, now: float) -> None:
        """Run the machine's start actions (send the request / deliver it to the TU)."""
        self._run(self.machine.start_actions, now, None, self.peer, None)

    def step(
        self,
        event: MachineEvent,
        now: float,
        message: Request | Response | None = None,
        source: Peer | None = None,
    ) -> None:
        """Apply the table row for ``event``.

        Raises:
            TransactionUsageError: the table has no row (callers check `allows` for wire
                input; a TU call that does not fit the state is the TU's error).
        """
        row = self.machine.table.get((self.state, event))
        if row is None:
            raise TransactionUsageError(
                f"{self.machine.name} transaction in state {self.state.value} "
                f"does not accept {event.value}"
            )
        new_state, actions = row
        if new_state is not self.state:
            self.state = new_state
            armed = self.armed
            if armed:  # hot path: most server transactions run no timer before their final
                allowed = self.machine.timers[new_state]
                cancel = self.owner.deadlines.cancel
                for timer in [t for t in armed if t not in allowed]:
                    armed.discard(timer)
                    cancel((self, timer))
        if actions:
            self._run(actions, now, message, source or self.peer, event)
        if new_state in _COMPACT_STATES:
            # Only stored bytes are needed from here on (retransmissions): dropping the
            # parsed request keeps the ~32 s of Completed/Accepted cheap for the GC.
            self.request = None
        if self.state is State.TERMINATED and not self.finished:
            # A zero timer (reliable D/I/J/K) may already have terminated us re-entrantly.
            self.finished = True
            if self.armed:
                cancel = self.owner.deadlines.cancel
                for timer in self.armed:
                    cancel((self, timer))
                self.armed.clear()
            self.owner._terminated(self)

    def arm(self, timer: Timer, deadline: float) -> None:
        """Start (or restart) ``timer`` to fire at ``deadline``."""
        self.armed.add(timer)
        self.owner.deadlines.set((self, timer), deadline)

    def disarm(self, timer: Timer) -> None:
        """Stop ``timer`` if it runs."""
        if timer in self.armed:
            self.armed.discard(timer)
            self.owner.deadlines.cancel((self, timer))

    def fire(self, timer: Timer, now: float) -> bool:
        """``timer``'s deadline came (the layer popped it): run its table row."""
        if timer not in self.armed or self.state is State.TERMINATED:
            return False
        self.armed.discard(timer)
        self.step(TIMER_EVENT[timer], now)
        return True

    def _run(
        self,
        actions: tuple[MachineAction, ...],
        now: float,
        message: Request | Response | None,
        source: Peer,
        event: MachineEvent | None,
    ) -> None:
        owner = self.owner
        zero: list[Timer] | None = None
        for action in actions:
            # hot path: ordered by how often each action runs on a UAS.
            if action is MachineAction.SEND_RESPONSE:
                if self.response_bytes is not None and self.response_target is not None:
                    owner._transmit(self.response_bytes, self.response_target, self)
            elif action is MachineAction.DELIVER:
                delivered = message if message is not None else self.request
                if delivered is not None:
                    owner._deliver(self, delivered, source)
            elif action is MachineAction.SEND_REQUEST:
                owner._transmit(self.request_bytes, self.peer, self)
            elif action is MachineAction.SEND_ACK:
                # RFC 3261 §17.1.1.3: the ACK for a non-2xx is built once and re-sent for
                # every retransmission of the final response.
                if self.ack_bytes is None and isinstance(message, Response):
                    self.ack_bytes = owner._build_ack(self, message)
                if self.ack_bytes is not None:
                    owner._transmit(self.ack_bytes, self.peer, self)
            elif action is MachineAction.SEND_TRYING:
                self._send_deferred_trying()
            elif action is MachineAction.TIMEOUT:
                owner._timeout(self, _EVENT_TIMER[event] if event is not None else Timer.B)
            elif action is MachineAction.TRANSPORT_ERROR:
                owner._transport_error(self, self.failure_reason)
            else:
                timer = ARMS[action]
                duration = self._duration(action, timer)
                if duration is None:
                    continue
                if duration <= 0.0:
                    if zero is None:
                        zero = []
                    zero.append(timer)
                    continue
                # hot path: arm() inlined (one call per timer armed)
                self.armed.add(timer)
                owner.deadlines.set((self, timer), now + duration)
        # RFC 3261 §17.1.1.2/§17.2.1: over reliable transports D, I, J, K are zero: the
        # transaction moves on at once instead of waiting for a heap pop.
        if zero is not None:
            for timer in zero:
                if self.state is not State.TERMINATED:
                    self.step(TIMER_EVENT[timer], now)

    def _send_deferred_trying(self) -> None:
        """Send the deferred 100 Trying unless the TU has sent a response meanwhile."""
        if not self.trying_owed:
            return
        self.trying_owed = False
        self.disarm(Timer.TRYING)
        request = self.request
        target = self.response_target
        if self.response_bytes is None and request is not None and target is not None:
            # RFC 3261 §17.2.1: the TU did not answer within trying_after (or the INVITE was
            # retransmitted first): the 100 Trying goes out now, and is the provisional
            # resent for later retransmissions.
            self.response_bytes = trying_bytes(request)
            self.owner._transmit(self.response_bytes, target, self)

    def _duration(self, action: MachineAction, timer: Timer) -> float | None:
        """Seconds until ``timer`` fires, or None when it does not run on this transport."""
        cfg = self.config
        if timer in _64_T1:
            return 64 * cfg.t1  # B, F, H, L, M: on every transport
        reliable = self.peer.transport in RELIABLE_TRANSPORTS  # hot path: no property calls
        if timer in (Timer.A, Timer.E, Timer.G):
            # RFC 3261 §17.1.1.2: retransmit timers only run over unreliable transports.
            if reliable:
                return None
            if action in (MachineAction.ARM_A, MachineAction.ARM_E, MachineAction.ARM_G):
                value = cfg.t1
            elif action is MachineAction.E_AT_T2:
                value = cfg.t2
            elif action is MachineAction.BACKOFF_A:
                # RFC 3261 §17.1.1.2: Timer A doubles, with no T2 cap.
                value = 2 * self.intervals[timer]
            else:
                # RFC 3261 §17.1.2.2 / §17.2.1: E and G double up to T2.
                value = min(2 * self.intervals[timer], cfg.t2)
            self.intervals[timer] = value
            return value
        if timer is Timer.C:
            return cfg.c
        if timer is Timer.D:
            return 0.0 if reliable else cfg.d
        if timer in (Timer.I, Timer.K):
            return 0.0 if reliable else cfg.t4
        # J
        return 0.0 if reliable else 64 * cfg.t1


_COMPACT_STATES = frozenset({State.COMPLETED, State.CONFIRMED, State.ACCEPTED})

# Timers of 64*T1 on every transport (RFC 3261 table 4; RFC 6026 §7.1 and §8.4 for L and M).
_64_T1 = frozenset({Timer.B, Timer.F, Timer.H, Timer.L, Timer.M})

# The timer behind a timer event (for TIMEOUT's report).
_EVENT_TIMER: dict[MachineEvent, Timer] = {event: timer for timer, event in TIMER_EVENT.items()}
