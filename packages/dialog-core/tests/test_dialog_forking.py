"""Forking through a stateless proxy on the virtual network (RFC 3261 §13.2.2.4, §16.11)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from rvoip_dialog_core import (
    ByeReceived,
    CancelReceived,
    DialogConfirmed,
    DialogEarly,
    DialogId,
    DialogTerminated,
    DialogUsageError,
    IncomingInvite,
    InviteFailed,
    TerminationReason,
)
from rvoip_dialog_core.testing import Agent, ForkingProxy, VirtualNetwork, WireRecord
from rvoip_sip_core import Request, Response
from rvoip_transaction_core import Peer

SDP = b"v=0\r\n"


def setup(drop: object = None) -> tuple[VirtualNetwork, Agent, Agent, Agent]:
    net = VirtualNetwork(drop=drop)  # type: ignore[arg-type]
    alice = net.add("alice", 5060, seed=1)
    bob = net.add("bob", 5070, seed=2)
    carol = net.add("carol", 5080, seed=3)
    proxy = ForkingProxy(Peer("UDP", "127.0.0.1", 5000), [bob.address, carol.address])
    net.add_relay(5000, proxy)
    return net, alice, bob, carol


def incoming(agent: Agent) -> IncomingInvite:
    (event,) = agent.of_type(IncomingInvite)
    assert isinstance(event, IncomingInvite)
    return event


def test_both_forks_answer_first_wins_second_acked_and_byed() -> None:
    net, alice, bob, carol = setup()
    alice.dialog.invite("sip:team@127.0.0.1:5000", from_="sip:alice@127.0.0.1", body=SDP, now=0)
    net.pump()
    b_inv, c_inv = incoming(bob), incoming(carol)
    bob.dialog.respond(b_inv.ref, 180, now=net.now)
    carol.dialog.respond(c_inv.ref, 180, now=net.now)
    net.pump()
    assert len(alice.of_type(DialogEarly)) == 2
    # Both answer before either 2xx reached the proxy (else it would CANCEL Carol).
    bob.dialog.respond(b_inv.ref, 200, body=SDP, now=net.now)
    carol.dialog.respond(c_inv.ref, 200, body=SDP, now=net.now)
    net.pump()
    (confirmed,) = alice.of_type(DialogConfirmed)
    assert isinstance(confirmed, DialogConfirmed)
    assert confirmed.dialog_id.remote_tag == b_inv.dialog_id.local_tag
    did = confirmed.dialog_id
    lost_id = DialogId(did.call_id, did.local_tag, c_inv.dialog_id.local_tag)
    lost = DialogTerminated(lost_id, TerminationReason.FORK_LOST)
    assert lost in alice.events
    # Carol's 2xx was ACKed, then she got a BYE.
    assert carol.of_type(ByeReceived)
    assert DialogTerminated(c_inv.dialog_id, TerminationReason.REMOTE_BYE) in carol.events
    assert len(alice.dialog) == 1
    assert len(bob.dialog) == 1
    assert len(carol.dialog) == 0
    net.advance(70.0)
    for agent in (alice, bob, carol):
        assert len(agent.txn) == 0


def test_cancel_reaches_every_fork() -> None:
    net, alice, bob, carol = setup()
    leg = alice.dialog.invite("sip:team@127.0.0.1:5000", from_="sip:alice@127.0.0.1", now=0.0)
    net.pump()
    for agent in (bob, carol):
        agent.dialog.respond(incoming(agent).ref, 180, now=net.now)
    net.pump()
    alice.dialog.cancel(leg, now=net.now)
    net.pump()
    for agent in (bob, carol):
        assert agent.of_type(CancelReceived)
    (failed,) = alice.of_type(InviteFailed)
    assert isinstance(failed, InviteFailed)
    assert failed.response.status == 487
    net.advance(70.0)
    for agent in (alice, bob, carol):
        assert sum(agent.dialog.pending().values()) == 0
        assert len(agent.txn) == 0


@settings(max_examples=40)
@given(
    st.lists(
        st.tuples(st.sampled_from(["bob", "carol"]), st.sampled_from([180, 183, 200, 486])),
        max_size=6,
    ),
    st.booleans(),
    st.integers(min_value=0, max_value=1000),
    st.sampled_from([0.0, 0.2]),
)
def test_random_fork_answers(
    answers: list[tuple[str, int]], cancel: bool, seed: int, loss: float
) -> None:
    """At most one fork is confirmed at the caller; every 2xx is ACKed; nothing is left."""
    rng = random.Random(seed)

    def drop(record: WireRecord) -> bool:
        # Loss only between the user agents: the test proxy keeps no retransmission timers,
        # so the hops through it are taken as reliable.
        via_proxy = 5000 in (record.source.port, record.target.port)
        return not via_proxy and rng.random() < loss

    net, alice, bob, carol = setup(drop)
    leg = alice.dialog.invite("sip:team@127.0.0.1:5000", from_="sip:alice@127.0.0.1", now=0.0)
    net.advance(1.0)
    callees = {"bob": bob, "carol": carol}
    for name, status in answers:
        agent = callees[name]
        waiting = agent.of_type(IncomingInvite)
        if not waiting:
            continue
        ref = waiting[0].ref  # type: ignore[union-attr]
        try:
            agent.dialog.respond(ref, status, body=SDP, now=net.now)
        except DialogUsageError:
            continue  # already answered or cancelled
        net.advance(rng.choice([0.0, 0.5]))
    if cancel:
        try:
            alice.dialog.cancel(leg, now=net.now)
        except DialogUsageError:
            pass  # already finished
    net.advance(5.0)
    confirmed = alice.of_type(DialogConfirmed)
    assert len(confirmed) <= 1
    for agent in (bob, carol):
        for event in agent.of_type(IncomingInvite):
            try:
                agent.dialog.respond(event.ref, 480, now=net.now)  # type: ignore[union-attr]
            except DialogUsageError:
                pass  # answered before
    for d in alice.dialog.dialogs:
        alice.dialog.bye(d.id, now=net.now)
    net.advance(200.0)
    oks = {
        m.to.tag
        for m in net.messages(status=200)
        if isinstance(m, Response) and m.cseq.method == "INVITE"
    }
    acked = {m.to.tag for m in net.messages(method="ACK") if isinstance(m, Request)}
    assert oks <= acked  # every answer got its ACK
    for agent in (alice, bob, carol):
        assert len(agent.dialog) == 0
        assert sum(agent.dialog.pending().values()) == 0, agent.dialog.pending()
        assert len(agent.txn) == 0
