"""Client and server layers over an in-memory network that loses chosen datagrams."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from rvoip_sip_core import make_response
from rvoip_transaction_core import (
    ResponseReceived,
    TransactionAck,
    TransactionEvent,
    TransactionRequest,
    TransactionTerminated,
    TransactionTimeout,
    Transmit,
)
from rvoip_transaction_core.testing import MemoryNetwork, Node, simple_request


def answering(net: MemoryNetwork, status: int):  # type: ignore[no-untyped-def]
    """A server TU answering every request at once with ``status``."""

    def tu(node: Node, event: TransactionEvent) -> None:
        if isinstance(event, TransactionRequest):
            tag = "srv" if status >= 200 else None
            response = make_response(event.request, status, to_tag=tag)
            node.layer.respond(event.txn_id, response, net.now)

    return tu


def test_options_survives_losing_the_first_request_and_the_first_response() -> None:
    net = MemoryNetwork(drop=lambda i, tx: i in (0, 2))
    a = net.add("127.0.0.1", 5060)
    b = net.add("127.0.0.2", 5060, tu=answering(net, 200))
    txn = a.layer.send_request(simple_request("OPTIONS"), b.peer(), 0.0)
    net.run_until_idle()
    assert [d.time for d in net.sent(a)] == [0.0, 0.5, 1.5]
    assert [d.first_line for d in net.sent(b)] == ["SIP/2.0 200 OK"] * 2
    oks = [e for e in a.events if isinstance(e, ResponseReceived)]
    assert len(oks) == 1
    assert len([e for e in b.events if isinstance(e, TransactionRequest)]) == 1
    assert a.events[-1] == TransactionTerminated(txn)
    assert len(a.layer) == 0
    assert len(b.layer) == 0


def test_invite_rejected_with_lost_trying_final_and_ack() -> None:
    lost: set[bytes] = set()

    def drop(i: int, tx: Transmit) -> bool:
        # lose the first copy of the 100, of the 486 and of the ACK
        first = tx.data.split(b"\r\n", 1)[0]
        if first in lost:
            return False
        if first.startswith((b"SIP/2.0 100", b"SIP/2.0 486", b"ACK")):
            lost.add(first)
            return True
        return False

    net = MemoryNetwork(drop=drop)
    a = net.add("127.0.0.1", 5060)
    b = net.add("127.0.0.2", 5060, tu=answering(net, 486))
    a.layer.send_request(simple_request("INVITE"), b.peer(), 0.0)
    net.run_until_idle()
    finals = [e for e in a.events if isinstance(e, ResponseReceived)]
    assert [e.response.status for e in finals] == [486]
    # server: 100, 486 (lost), 486 on Timer G at 0.5 ... until the ACK arrives
    server_lines = [d.first_line for d in net.sent(b)]
    assert server_lines.count("SIP/2.0 486 Busy Here") >= 2
    assert not any(isinstance(e, TransactionTimeout) for e in b.events)  # the ACK did arrive
    assert len(a.layer) == 0
    assert len(b.layer) == 0


def test_invite_accepted_with_lost_2xx_is_retransmitted_by_the_tu_and_acked() -> None:
    net = MemoryNetwork(drop=lambda i, tx: tx.data.startswith(b"SIP/2.0 200") and i < 3)
    pending: list[TransactionRequest] = []

    def uas(node: Node, event: TransactionEvent) -> None:
        if isinstance(event, TransactionRequest):
            pending.append(event)

    def uac(node: Node, event: TransactionEvent) -> None:
        if isinstance(event, ResponseReceived) and event.response.status == 200:
            ack = simple_request("ACK", to_tag=event.response.to.tag)
            node.layer.send_stateless(ack, b.peer(), net.now)

    a = net.add("127.0.0.1", 5060, tu=uac)
    b = net.add("127.0.0.2", 5060, tu=uas)
    a.layer.send_request(simple_request("INVITE"), b.peer(), 0.0)
    net.pump()
    ok = make_response(pending[0].request, 200, to_tag="u1")
    b.layer.respond(pending[0].txn_id, ok, 0.0)  # lost
    net.run(0.5)
    b.layer.respond(pending[0].txn_id, ok, net.now)  # RFC 3261 §13.3.1.4: UAS core resends
    net.run_until_idle()
    assert len([e for e in b.events if isinstance(e, TransactionAck)]) == 1
    assert len([e for e in a.events if isinstance(e, ResponseReceived)]) >= 1
    assert len(a.layer) == 0
    assert len(b.layer) == 0


@given(st.lists(st.booleans(), max_size=40), st.sampled_from(["OPTIONS", "INVITE"]))
# Regression: INVITE and 100 arrive, then the 404 and all its retransmissions are lost; the
# INVITE client sat in Proceeding for ever until Timer C was added (181 s by default).
@example(losses=[False, False] + [True] * 11, method="INVITE")
def test_any_loss_pattern_gives_one_final_or_a_timeout_and_everything_ends(
    losses: list[bool], method: str
) -> None:
    def drop(i: int, tx: Transmit) -> bool:
        return i < len(losses) and losses[i]

    net = MemoryNetwork(drop=drop)
    a = net.add("127.0.0.1", 5060)
    b = net.add("127.0.0.2", 5060, tu=answering(net, 404))
    txn = a.layer.send_request(simple_request(method), b.peer(), 0.0)
    net.run_until_idle()
    finals = [e for e in a.events if isinstance(e, ResponseReceived) and e.response.status >= 200]
    timeouts = [e for e in a.events if isinstance(e, TransactionTimeout)]
    assert len(finals) + len(timeouts) == 1
    assert a.events[-1] == TransactionTerminated(txn)
    assert len([e for e in b.events if isinstance(e, TransactionRequest)]) <= 1
    assert len(a.layer) == 0
    assert len(b.layer) == 0
