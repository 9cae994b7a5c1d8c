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

from rvoip_sip_core import (
    Message,
    Request,
    Response,
    make_request,
    make_response,
    parse_message,
)
from rvoip_sip_core._lexer import split_list
from rvoip_transaction_core import (
    Peer,
    ResponseReceived,
    TimerConfig,
    TransactionAck,
    TransactionLayer,
    TransactionRequest,
    TransactionTerminated,
    TransactionTimeout,
    TransactionUsageError,
    Transmit,
    TransportFailure,
)

from ._config import DialogConfig
from ._events import DialogEvent, SendAck, SendRequest, SendResponse
from ._hops import target_for
from ._layer import DialogLayer

__all__ = ["Agent", "ForkingProxy", "Relay", "VirtualNetwork", "WireRecord"]

Relay = Callable[[Message, Peer], list[tuple[Message, Peer]]]
"""A network node that is not a user agent: message and source in, messages to send out."""


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
        self.relays: dict[tuple[str, int], tuple[Peer, Relay]] = {}
        self._queue: list[tuple[Peer, Transmit]] = []

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

    def add_relay(self, port: int, relay: Relay, *, host: str = "127.0.0.1") -> Peer:
        """Put a relay (e.g. a :class:`ForkingProxy`) at ``host:port``; returns its address."""
        address = Peer("UDP", host, port)
        self.relays[(host, port)] = (address, relay)
        return address

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
            if isinstance(event, TransactionRequest):
                layer.on_request(event.request, event.txn_id, self.now, cancels=event.cancels)
            elif isinstance(event, TransactionAck):
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
                    self._queue.append((agent.address, transmit))
            queue, self._queue = self._queue, []
            for source, transmit in queue:
                moved = True
                self._deliver(source, transmit)
            if not moved:
                return
        raise RuntimeError("virtual network did not settle")

    def _deliver(self, source: Peer, transmit: Transmit) -> None:
        record = WireRecord(self.now, source, transmit.target, parse_message(transmit.data), False)
        if self.drop is not None and self.drop(record):
            record = attrs.evolve(record, dropped=True)
        self.wire.append(record)
        if record.dropped:
            return
        key = (transmit.target.host, transmit.target.port)
        target = self.agents.get(key)
        if target is not None:
            target.txn.receive(transmit.data, source, self.now)
        elif key in self.relays:
            address, relay = self.relays[key]
            for message, to in relay(record.message, source):
                self._queue.append((address, Transmit(message.encode(), to, None)))

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


class ForkingProxy:
    """A forking proxy for tests (RFC 3261 §16), transaction-stateful only as far as needed.

    An INVITE goes to every target, each fork under its own Via branch. Provisional and 2xx
    responses are passed back at once; a 2xx also CANCELs the forks still pending (§16.7
    step 10). Non-2xx finals are ACKed here (hop by hop) and only the best one is passed
    back, once every fork has answered (§16.7 step 6). A CANCEL from the caller is answered
    200 and sent to every pending fork. No Record-Route: requests inside dialogs and the ACK
    of a 2xx go directly between the user agents.
    """

    def __init__(self, address: Peer, targets: list[Peer]) -> None:
        self.address = address
        self.targets = targets
        self._forks: dict[str, list[tuple[Request, int | None]]] = {}
        self._replies: dict[str, dict[int, Response]] = {}
        self._chosen: dict[str, int] = {}

    def _via(self, branch: str) -> str:
        return f"SIP/2.0/UDP {self.address.host}:{self.address.port};branch={branch}"

    def __call__(self, message: Message, source: Peer) -> list[tuple[Message, Peer]]:
        """Handle one message; returns what to send where."""
        if isinstance(message, Request):
            return self._request(message, source)
        return self._response(message)

    def _request(self, request: Request, source: Peer) -> list[tuple[Message, Peer]]:
        branch = request.top_via.branch or ""
        if request.method == "INVITE" and branch not in self._forks:
            forks = [
                request.prepend_header("Via", self._via(f"{branch}.{i}"))
                for i in range(len(self.targets))
            ]
            self._forks[branch] = [(fork, None) for fork in forks]
            return list(zip(forks, self.targets, strict=True))
        if request.method == "CANCEL" and branch in self._forks:
            out: list[tuple[Message, Peer]] = [(make_response(request, 200), source)]
            return out + self._cancel_pending(branch)
        chosen = self._chosen.get(branch)
        if request.method == "ACK" and chosen is not None:
            # The caller's ACK for the failure passed back goes to the fork that sent it.
            ack = request.prepend_header("Via", self._via(f"{branch}.{chosen}"))
            return [(ack, self.targets[chosen])]
        return []  # retransmissions (the forks retransmit themselves) and stray ACKs

    def _cancel_pending(self, branch: str) -> list[tuple[Message, Peer]]:
        out: list[tuple[Message, Peer]] = []
        pending = zip(self._forks[branch], self.targets, strict=True)
        for i, ((fork, final), target) in enumerate(pending):
            if final is None:
                # RFC 3261 §9.1: the fork's Request-URI, Call-ID, From, To, CSeq number and
                # top Via (only), method CANCEL.
                cancel = make_request(
                    "CANCEL",
                    fork.uri,
                    from_=fork.headers.get("From") or "",
                    to=fork.headers.get("To") or "",
                    call_id=fork.call_id,
                    cseq=fork.cseq.seq,
                    via=self._via(f"{branch}.{i}"),
                )
                out.append((cancel, target))
        return out

    def _response(self, response: Response) -> list[tuple[Message, Peer]]:
        vias = [v for line in response.headers.get_all("Via") for v in split_list(line)]
        branch, _, index = (response.top_via.branch or "").rpartition(".")
        if len(vias) < 2 or branch not in self._forks or not index.isdigit():
            return []
        if response.cseq.method == "CANCEL":
            return []  # the caller's CANCEL was answered here already
        reply = self._strip(response)
        host, port = reply.top_via.sent_by
        upstream = Peer("UDP", host.strip("[]"), port or 5060)
        i = int(index)
        forks = self._forks[branch]
        fork, final = forks[i]
        if response.status < 200:
            return [(reply, upstream)]
        if final is None:
            forks[i] = (fork, response.status)
        if response.status < 300:
            return [(reply, upstream), *self._cancel_pending(branch)]
        chosen = self._chosen.get(branch)
        if chosen is not None:
            # Decided: the chosen fork's retransmissions go up, the others are ACKed again.
            return [(reply, upstream)] if i == chosen else [self._ack(branch, i, response)]
        if any(f is not None and f < 300 for _, f in forks):
            return [self._ack(branch, i, response)]  # a 2xx won: absorb the failure
        self._replies.setdefault(branch, {})[i] = response
        if any(f is None for _, f in forks):
            return []  # RFC 3261 §16.7 step 6: wait until every fork has answered
        # RFC 3261 §16.7 step 6: pass back the best (lowest-class) final response; ACK the rest.
        replies = self._replies.pop(branch)
        best = min(replies, key=lambda k: replies[k].status)
        self._chosen[branch] = best
        out = [self._ack(branch, k, r) for k, r in replies.items() if k != best]
        return [*out, (reply if best == i else self._strip(replies[best]), upstream)]

    def _strip(self, response: Response) -> Response:
        vias = [v for line in response.headers.get_all("Via") for v in split_list(line)]
        reply = response.without_header("Via")
        for via in reversed(vias[1:]):
            reply = reply.prepend_header("Via", via)
        return reply

    def _ack(self, branch: str, i: int, response: Response) -> tuple[Message, Peer]:
        # RFC 3261 §17.1.1.3: the proxy's client transaction ACKs a non-2xx itself.
        fork = self._forks[branch][i][0]
        ack = make_request(
            "ACK",
            fork.uri,
            from_=fork.headers.get("From") or "",
            to=response.headers.get("To") or "",
            call_id=fork.call_id,
            cseq=fork.cseq.seq,
            via=self._via(f"{branch}.{i}"),
        )
        return ack, self.targets[i]
