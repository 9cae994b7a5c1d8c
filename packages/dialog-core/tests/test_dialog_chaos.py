"""Random call operations on a lossy virtual network: never an exception, nothing leaks."""

from __future__ import annotations

import contextlib
import random

import attrs
from hypothesis import event as hypothesis_event
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rvoip_dialog_core import (
    DialogConfig,
    DialogState,
    DialogUsageError,
    IncomingInvite,
    ReferReceived,
    ReInviteReceived,
    RequestReceived,
    UpdateReceived,
)
from rvoip_dialog_core.testing import Agent, VirtualNetwork, WireRecord

OPS = [
    *["invite"] * 3,
    "ring",
    "ring_reliable",
    *["answer"] * 4,
    "reject",
    "cancel",
    *["bye"] * 2,
    "reinvite",
    "glare",
    "update",
    "info",
    "refer",
    "wait",
]


def serve(agent: Agent, rng: random.Random, now: float, *, reject_calls: bool = False) -> None:
    """The TU: answer every request that waits for an answer, at random."""
    for event in list(agent.events):
        agent.events.remove(event)
        with contextlib.suppress(DialogUsageError):  # answered meanwhile (e.g. 487 on BYE)
            answer(agent, event, rng, now, reject_calls)


def answer(agent: Agent, event: object, rng: random.Random, now: float, reject_calls: bool) -> None:
    """One TU decision."""
    if isinstance(event, ReInviteReceived | UpdateReceived | RequestReceived):
        agent.dialog.respond(event.ref, rng.choice([200, 488]), body=b"v=0\r\n", now=now)
    elif isinstance(event, ReferReceived):
        if rng.random() < 0.5:
            sub = agent.dialog.accept_refer(event.ref, now=now)
            agent.dialog.notify_refer(sub, 200, "OK", now=now)
        else:
            agent.dialog.respond(event.ref, 603, now=now)
    elif isinstance(event, IncomingInvite) and reject_calls:
        agent.dialog.respond(event.ref, 480, now=now)
    elif isinstance(event, IncomingInvite):
        agent.events.append(event)  # left for the "ring"/"answer"/"reject" steps


@settings(max_examples=60)
# Regressions found by this property (each once left a transaction or dialog behind):
# a 481 to the callee's UPDATE before its 2xx was ACKed ended the dialog;
@example(
    [("invite", True), ("invite", False), ("answer", False), ("update", False)], 6588, 0.3, 1800
)
# a 2xx to a glared re-INVITE arrived after the BYE and was never ACKed;
@example(
    [("invite", True), ("invite", False), ("answer", False), ("invite", False), ("glare", False)]
    + [("invite", False)] * 3
    + [("bye", False)],
    156,
    0.3,
    1800,
)
# a 481 to a retransmitted PRACK ended the early dialog that the late 2xx then revived.
@example(
    [("invite", False)]
    + [("ring", False)] * 5
    + [("answer", False), ("invite", False), ("ring", False), ("ring_reliable", False)]
    + [("cancel", True), ("bye", False), ("ring_reliable", False), ("answer", False)],
    51800,
    0.3,
    1800,
)
@given(
    st.lists(st.tuples(st.sampled_from(OPS), st.booleans()), min_size=5, max_size=25),
    st.integers(min_value=0, max_value=10_000),
    st.sampled_from([0.0, 0.1, 0.3]),
    st.sampled_from([90, 1800]),
)
def test_random_operations_with_loss(
    ops: list[tuple[str, bool]], seed: int, loss: float, session_expires: int
) -> None:
    hypothesis_event(f"reached: {run_chaos(ops, seed, loss, session_expires)}")


def run_chaos(
    ops: list[tuple[str, bool]], seed: int, loss: float, session_expires: int = 1800
) -> str:
    """Play ``ops`` between two agents with ``loss``, wind down, check nothing is left."""
    rng = random.Random(seed)

    def drop(_record: WireRecord) -> bool:
        return rng.random() < loss

    net = VirtualNetwork(drop=drop)

    def timers(config: DialogConfig) -> DialogConfig:
        return attrs.evolve(config, session_expires=session_expires)

    alice = net.add("alice", 5060, seed=seed, configure=timers)
    bob = net.add("bob", 5070, seed=seed + 1, configure=timers)
    legs = []
    for op, alice_acts in ops:
        actor, other = (alice, bob) if alice_acts else (bob, alice)
        target = f"sip:{other.name}@127.0.0.1:{other.address.port}"
        confirmed = [d for d in actor.dialog.dialogs if d.state is DialogState.CONFIRMED]
        invites = [e for e in actor.events if isinstance(e, IncomingInvite)]
        if op in ("ring", "ring_reliable", "answer", "reject") and not invites:
            actor = other  # the callee is whoever has a call waiting
            invites = [e for e in actor.events if isinstance(e, IncomingInvite)]
        try:
            if op == "invite":
                legs.append(actor.dialog.invite(target, from_="sip:x@127.0.0.1", now=net.now))
            elif op in ("ring", "ring_reliable", "answer", "reject") and invites:
                status = {"ring": 180, "ring_reliable": 183, "answer": 200, "reject": 486}[op]
                actor.dialog.respond(
                    invites[0].ref,
                    status,
                    body=b"v=0\r\n",
                    reliable=op == "ring_reliable",
                    now=net.now,
                )
                if status >= 200:
                    actor.events.remove(invites[0])
            elif op == "cancel" and legs:
                actor.dialog.cancel(rng.choice(legs), now=net.now)
            elif op == "glare" and confirmed:
                # Both sides re-INVITE at once (RFC 3261 §14.1): 491s, then random retries.
                did = rng.choice(confirmed).id
                mirror = type(did)(did.call_id, did.remote_tag, did.local_tag)
                actor.dialog.reinvite(did, b"v=0\r\n", now=net.now)
                if other.dialog.dialog(mirror) is not None:
                    other.dialog.reinvite(mirror, b"v=0\r\n", now=net.now)
            elif op in ("bye", "reinvite", "update", "info", "refer") and confirmed:
                did = rng.choice(confirmed).id
                if op == "bye":
                    actor.dialog.bye(did, now=net.now)
                elif op == "reinvite":
                    actor.dialog.reinvite(did, b"v=0\r\n", now=net.now)
                elif op == "update":
                    actor.dialog.update(did, b"v=0\r\n", now=net.now)
                elif op == "info":
                    actor.dialog.info(did, b"Signal=1\r\n", "application/dtmf-relay", now=net.now)
                else:
                    actor.dialog.refer(did, "sip:carol@127.0.0.1:5999", now=net.now)
        except DialogUsageError:
            pass  # e.g. a CANCEL for a leg already answered: refused locally, by design
        net.pump()
        serve(alice, rng, net.now)
        serve(bob, rng, net.now)
        net.advance(60.0 if op == "wait" else rng.choice([0.0, 0.2, 2.0]))
    methods = {getattr(r.message, "method", None) for r in net.wire}
    reached = "BYE" if "BYE" in methods else "ACK" if "ACK" in methods else "none"
    # Wind down: give up on calls not answered (as wait_for_answer would), reject what
    # rings, hang up what is up, then let every timer run out.
    for leg in legs:
        for agent in (alice, bob):
            with contextlib.suppress(DialogUsageError):
                agent.dialog.cancel(leg, now=net.now)
    net.advance(5.0)
    for agent in (alice, bob):
        for event in [e for e in agent.events if isinstance(e, IncomingInvite)]:
            try:
                agent.dialog.respond(event.ref, 480, now=net.now)
            except DialogUsageError:
                pass  # cancelled meanwhile
        agent.events.clear()
    net.pump()
    for agent in (alice, bob):
        for d in agent.dialog.dialogs:
            if d.state is DialogState.CONFIRMED and d.id in {x.id for x in agent.dialog.dialogs}:
                try:
                    agent.dialog.bye(d.id, now=net.now)
                except DialogUsageError:
                    pass  # the callee's early dialog: ended by the CANCEL/reject above
    for _ in range(40):
        net.advance(100.0)
        serve(alice, rng, net.now, reject_calls=True)
        serve(bob, rng, net.now, reject_calls=True)
    for agent in (alice, bob):
        assert not [k for k in agent.dialog.stats if k.startswith("forced_end")]
        assert sum(agent.dialog.pending().values()) == 0, agent.dialog.pending()
        assert len(agent.txn) == 0
    return reached


def test_chaos_harness_really_makes_calls() -> None:
    """The operations above do set up and tear down calls (guards the property's power)."""
    net = VirtualNetwork()
    alice = net.add("alice", 5060, seed=1)
    bob = net.add("bob", 5070, seed=2)
    rng = random.Random(0)
    alice.dialog.invite("sip:bob@127.0.0.1:5070", from_="sip:x@127.0.0.1", now=0.0)
    net.pump()
    (inv,) = [e for e in bob.events if isinstance(e, IncomingInvite)]
    bob.dialog.respond(inv.ref, 200, body=b"v=0\r\n", now=net.now)
    net.pump()
    serve(bob, rng, net.now)
    (up,) = alice.dialog.dialogs
    alice.dialog.refer(up.id, "sip:carol@127.0.0.1:5999", now=net.now)
    net.pump()
    serve(bob, rng, net.now)
    net.pump()
    methods = [getattr(r.message, "method", None) for r in net.wire]
    assert {"INVITE", "ACK", "REFER"} <= set(methods)
