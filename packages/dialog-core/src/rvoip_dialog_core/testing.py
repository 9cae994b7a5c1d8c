"""Test helpers: user agents (transaction layer + dialog layer) on an in-memory network.

No sockets and no wall clock: a :class:`VirtualNetwork` carries datagrams between
:class:`Agent` objects and jumps a virtual clock from deadline to deadline, so a 32 s
timeout costs microseconds. A ``drop`` filter simulates loss. Session-core's tests can
reuse it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from rvoip_sip_core import Message, Request, parse_message
from rvoip_transaction_core import (
    AckReceived as TxnAckReceived,
)
from rvoip_transaction_core import (
    Peer,
    RequestReceived,
    ResponseReceived,
    TimerConfig,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    TransactionUsageError,
    Transmit,
    TransportFailure,
)

from ._config import DialogConfig
from ._driver import target_for
from ._events import DialogEvent, SendAck, SendRequest, SendResponse
from ._layer import DialogLayer

__all__ = ["Agent", "VirtualNetwork", "WireRecord"]


@attrs.frozen
class WireRecord:
    """One datagram seen on the virtual network (kept for assertions)."""

    at: float
    source: Peer
    target: Peer
    message: Message
    dropped: bool


@attrs.define(eq=False)
class Agent:
    """One user agent: a transaction layer and a dialog layer at ``address``."""

    name: str
    address: Peer
    txn: TransactionLayer
    dialog: DialogLayer
    events: list[DialogEvent] = attrs.Factory(list)
    client_txns: dict[int, Request] = attrs.Factory(dict)

    def of_type(self, kind: type[DialogEvent]) -> list[DialogEvent]:
        """The events of one type received so far."""
        return [e for e in self.events if isinstance(e, kind)]


class VirtualNetwork:
    """Agents exchanging datagrams through memory, under a virtual clock.

    Args:
        timers: Transaction-layer timers (T1/T2 also used by the dialog layers).
        drop: Called for each datagram; True drops it (loss simulation).
    """

    def __init__(
        self,
        *,
        timers: TimerConfig | None = None,
        drop: Callable[[WireRecord], bool] | None = None,
    ) -> None:
        self.now = 0.0
        self.timers = timers or TimerConfig()
        self.drop = drop
        self.agents: dict[tuple[str, int], Agent] = {}
        self.wire: list[WireRecord] = []
        self._queue: list[tuple[Agent, Transmit]] = []

    def add(
        self,
        name: str,
        port: int,
        *,
        host: str = "127.0.0.1",
        seed: int = 0,
        configure: Callable[[DialogConfig], DialogConfig] | None = None,
    ) -> Agent:
        """Create an agent ``sip:<name>@host:port`` with seeded randomness."""
        rng = random.Random(seed)
        txn = TransactionLayer(config=self.timers, rng=rng)
        txn.set_local("UDP", host, port)
        config = DialogConfig(
            contact=f"sip:{name}@{host}:{port}",
            via_host=host,
            via_port=port,
            t1=self.timers.t1,
            t2=self.timers.t2,
        )
        if configure is not None:
            config = configure(config)
        agent = Agent(name, Peer("UDP", host, port), txn, DialogLayer(config, rng=rng))
        self.agents[(host, port)] = agent
        return agent

    # --- pumping ------------------------------------------------------------------------------

    def _dialog_actions(self, agent: Agent) -> bool:
        moved = False
        for action in agent.dialog.take_actions():
            moved = True
            if isinstance(action, SendResponse):
                assert isinstance(action.server, int)
                try:
                    agent.txn.respond(action.server, action.response, self.now)
                except TransactionUsageError:
                    pass  # the server transaction ended: the 2xx retransmission is moot
                continue
            target = target_for(action.request)
            if target is None:
                if isinstance(action, SendRequest):
                    agent.dialog.on_transport_error(action.request, self.now)
                continue
            if isinstance(action, SendAck):
                agent.txn.send_stateless(action.request, target, self.now)
            else:
                txn_id = agent.txn.send_request(action.request, target, self.now)
                agent.client_txns[txn_id] = action.request
        agent.events.extend(agent.dialog.take_events())
        return moved

    def _txn_events(self, agent: Agent) -> bool:
        events = agent.txn.take_events()
        layer = agent.dialog
        for event in events:
            if isinstance(event, RequestReceived):
                layer.on_request(event.request, event.txn_id, self.now, cancels=event.cancels)
            elif isinstance(event, TxnAckReceived):
                layer.on_ack(event.request, self.now)
            elif isinstance(event, ResponseReceived):
                layer.on_response(event.response, self.now)
            elif isinstance(event, TransactionTimeout):
                request = agent.client_txns.get(event.txn_id)
                if request is not None:
                    layer.on_timeout(request, self.now)
            elif isinstance(event, TransportFailure):
                request = agent.client_txns.get(event.txn_id)
                if request is not None:
                    layer.on_transport_error(request, self.now)
            elif isinstance(event, TransactionTerminated):
                agent.client_txns.pop(event.txn_id, None)
        return bool(events)

    def pump(self) -> None:
        """Run every agent and deliver every datagram until nothing moves (bounded)."""
        for _ in range(10_000):
            moved = False
            for agent in list(self.agents.values()):
                moved |= self._dialog_actions(agent)
                moved |= self._txn_events(agent)
                moved |= self._dialog_actions(agent)
                for transmit in agent.txn.take_transmits():
                    self._queue.append((agent, transmit))
            queue, self._queue = self._queue, []
            for source, transmit in queue:
                moved = True
                self._deliver(source, transmit)
            if not moved:
                return
        raise RuntimeError("virtual network did not settle")

    def _deliver(self, source: Agent, transmit: Transmit) -> None:
        record = WireRecord(
            self.now, source.address, transmit.target, parse_message(transmit.data), False
        )
        if self.drop is not None and self.drop(record):
            record = attrs.evolve(record, dropped=True)
        self.wire.append(record)
        if record.dropped:
            return
        target = self.agents.get((transmit.target.host, transmit.target.port))
        if target is not None:
            target.txn.receive(transmit.data, source.address, self.now)

    # --- time ---------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest deadline of any layer of any agent."""
        times = [
            t
            for agent in self.agents.values()
            for t in (agent.txn.next_deadline(), agent.dialog.next_deadline())
            if t is not None
        ]
        return min(times) if times else None

    def run(self, until: float) -> None:
        """Pump, then jump from deadline to deadline up to ``until`` (virtual seconds)."""
        self.pump()
        for _ in range(100_000):
            deadline = self.next_deadline()
            if deadline is None or deadline > until:
                break
            self.now = max(self.now, deadline)
            for agent in self.agents.values():
                agent.txn.handle_timers(self.now)
                agent.dialog.handle_timers(self.now)
            self.pump()
        self.now = max(self.now, until)

    def advance(self, seconds: float) -> None:
        """Run ``seconds`` of virtual time."""
        self.run(self.now + seconds)

    def messages(self, *, method: str | None = None, status: int | None = None) -> list[Message]:
        """Delivered (not dropped) messages on the wire, filtered by method or status."""
        out: list[Message] = []
        for record in self.wire:
            msg = record.message
            if record.dropped:
                continue
            if method is not None and not (isinstance(msg, Request) and msg.method == method):
                continue
            if status is not None and (isinstance(msg, Request) or msg.status != status):
                continue
            out.append(msg)
        return out
