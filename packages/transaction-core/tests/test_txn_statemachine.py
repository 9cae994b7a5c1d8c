"""Hypothesis state machine: random requests, responses, retransmissions, TU calls, transport
errors and timer firings against one layer. No illegal transition, no exception, and every
transaction terminates once the TU and the peer have had their last word."""

from __future__ import annotations

import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from rvoip_sip_core import Request, make_response, parse_message
from rvoip_transaction_core import (
    MACHINES,
    MachineEvent,
    Peer,
    State,
    TransactionLayer,
    TransactionRequest,
    TransactionTerminated,
    TransactionUsageError,
)
from rvoip_transaction_core.testing import simple_request

PEER = Peer("UDP", "127.0.0.5", 5070)
BRANCHES = ["z9hG4bKb1", "z9hG4bKb2", "z9hG4bKb3", "rfc2543-1"]
STATUSES = [100, 180, 200, 404, 486]
ALL_STATES = {state for machine in MACHINES for (state, _event) in machine.table} | {
    State.TERMINATED
}


class LayerMachine(RuleBasedStateMachine):
    """Drives one TransactionLayer as both a UAC and a UAS."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = TransactionLayer(rng=random.Random(7))
        self.layer.set_local("UDP", "127.0.0.1", 5060)
        self.layer.set_local("TCP", "127.0.0.1", 5060)
        self.now = 0.0
        self.created: set[int] = set()
        self.terminated: set[int] = set()
        self.client_requests: dict[int, Request] = {}
        self.server: dict[int, Request] = {}
        self.received_wire: list[bytes] = []

    def _drain(self) -> None:
        for tx in self.layer.take_transmits():
            if tx.txn_id is not None:
                # layer-owned transactions (481/482 answers) appear only here
                self.created.add(tx.txn_id)
        for event in self.layer.take_events():
            txn_id = getattr(event, "txn_id", None)
            if txn_id is not None:
                assert txn_id not in self.terminated, f"event after termination: {event}"
            if isinstance(event, TransactionRequest):
                self.created.add(event.txn_id)
                self.server[event.txn_id] = event.request
            if isinstance(event, TransactionTerminated):
                self.terminated.add(event.txn_id)
                self.server.pop(event.txn_id, None)
                self.client_requests.pop(event.txn_id, None)

    @rule(method=st.sampled_from(["INVITE", "OPTIONS", "BYE"]), tcp=st.booleans())
    def send_request(self, method: str, tcp: bool) -> None:
        target = Peer("TCP" if tcp else "UDP", "127.0.0.2", 5060)
        txn = self.layer.send_request(simple_request(method), target, self.now)
        self.created.add(txn)
        self.client_requests[txn] = self.layer.request_of(txn)  # type: ignore[assignment]
        self._drain()

    @precondition(lambda self: self.client_requests)
    @rule(data=st.data(), status=st.sampled_from(STATUSES))
    def receive_response(self, data: st.DataObject, status: int) -> None:
        txn = data.draw(st.sampled_from(sorted(self.client_requests)))
        request = self.client_requests[txn]
        response = make_response(request, status, to_tag=None if status == 100 else "rt")
        self.layer.receive(response.encode(), PEER, self.now)
        self._drain()

    @rule(
        method=st.sampled_from(["INVITE", "OPTIONS", "CANCEL", "ACK"]),
        branch=st.sampled_from(BRANCHES),
        to_tag=st.sampled_from([None, "srv"]),
        call=st.integers(0, 2),
        tcp=st.booleans(),
    )
    def receive_request(
        self, method: str, branch: str, to_tag: str | None, call: int, tcp: bool
    ) -> None:
        transport = "TCP" if tcp else "UDP"
        via = f"SIP/2.0/{transport} 127.0.0.5:5070;branch={branch}"
        request = simple_request(method, via=via, to_tag=to_tag, call_id=f"c{call}")
        data = request.encode()
        self.received_wire.append(data)
        source = Peer("TCP", "127.0.0.5", 40000, connection=1) if tcp else PEER
        self.layer.receive(data, source, self.now)
        self._drain()

    @precondition(lambda self: self.received_wire)
    @rule(data=st.data())
    def retransmit_request(self, data: st.DataObject) -> None:
        self.layer.receive(data.draw(st.sampled_from(self.received_wire)), PEER, self.now)
        self._drain()

    @precondition(lambda self: self.server)
    @rule(data=st.data(), status=st.sampled_from(STATUSES))
    def tu_responds(self, data: st.DataObject, status: int) -> None:
        txn = data.draw(st.sampled_from(sorted(self.server)))
        request = self.server[txn]
        state = self.layer.state(txn)
        event = (
            MachineEvent.TU_1XX
            if status < 200
            else MachineEvent.TU_2XX
            if status < 300
            else MachineEvent.TU_FINAL
        )
        allowed = any((state, event) in m.table for m in MACHINES if m.name.endswith("server"))
        response = make_response(request, status, to_tag=None if status == 100 else "srv")
        try:
            self.layer.respond(txn, response, self.now)
        except TransactionUsageError:
            assert not _row(self.layer, txn, event)
        else:
            assert allowed
        self._drain()

    @precondition(lambda self: self.created - self.terminated)
    @rule(data=st.data())
    def transport_error(self, data: st.DataObject) -> None:
        txn = data.draw(st.sampled_from(sorted(self.created - self.terminated)))
        self.layer.transport_failed(txn, "boom", self.now)
        self._drain()

    @rule(dt=st.sampled_from([0.0, 0.1, 0.5, 1.0, 4.0, 5.0, 32.0, 33.0]))
    def advance(self, dt: float) -> None:
        self.now += dt
        self.layer.handle_timers(self.now)
        self._drain()

    @rule()
    def garbage(self) -> None:
        self.layer.receive(b"INVITE sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n", PEER, self.now)
        self._drain()

    @invariant()
    def states_are_legal(self) -> None:
        for txn in self.created - self.terminated:
            assert self.layer.state(txn) in ALL_STATES
        deadline = self.layer.next_deadline()
        assert deadline is None or deadline >= 0.0

    def teardown(self) -> None:
        # The TU answers everything still open, the peer answers every INVITE client that
        # is still waiting; then virtual time runs on: all must be gone.
        for txn, request in list(self.server.items()):
            if self.layer.state(txn) in (State.TRYING, State.PROCEEDING):
                self.layer.respond(txn, make_response(request, 500, to_tag="end"), self.now)
        for txn, request in list(self.client_requests.items()):
            if self.layer.state(txn) is State.PROCEEDING:
                final = make_response(request, 487, to_tag="end")
                self.layer.receive(final.encode(), PEER, self.now)
        self._drain()
        for _ in range(10):
            self.now += 64.0
            self.layer.handle_timers(self.now)
            self._drain()
        assert len(self.layer) == 0
        assert self.created == self.terminated
        assert self.layer.next_deadline() is None
        parse_message(simple_request("OPTIONS", via="SIP/2.0/UDP h;branch=z9hG4bKz").encode())


def _row(layer: TransactionLayer, txn: int, event: MachineEvent) -> bool:
    state = layer.state(txn)
    return state is not None and any((state, event) in m.table for m in MACHINES)


LayerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestLayerMachine = LayerMachine.TestCase
