"""Reliable provisional responses and PRACK (RFC 3262) on the virtual network."""

from __future__ import annotations

import attrs

from rvoip_dialog_core import (
    DialogConfig,
    DialogConfirmed,
    DialogEarly,
    DialogTerminated,
    IncomingInvite,
    InviteFailed,
    InviteProgress,
    PrackReceived,
    SendResponse,
    TerminationReason,
)
from rvoip_dialog_core.testing import Agent, VirtualNetwork, WireRecord
from rvoip_sip_core import Request, Response

BOB = "sip:bob@127.0.0.1:5070"


def setup(drop: object = None, **bob: object) -> tuple[VirtualNetwork, Agent, Agent]:
    net = VirtualNetwork(drop=drop)  # type: ignore[arg-type]
    alice = net.add("alice", 5060, seed=1)

    def configure(config: DialogConfig) -> DialogConfig:
        return attrs.evolve(config, **bob)  # type: ignore[arg-type]

    return net, alice, net.add("bob", 5070, seed=2, configure=configure)


def start(net: VirtualNetwork, alice: Agent, bob: Agent) -> IncomingInvite:
    alice.dialog.invite(BOB, from_="sip:alice@127.0.0.1", body=b"v=0\r\n", now=net.now)
    net.pump()
    (inv,) = bob.of_type(IncomingInvite)
    assert isinstance(inv, IncomingInvite)
    return inv


def provisionals(net: VirtualNetwork) -> list[Response]:
    return [
        m
        for m in net.messages()
        if isinstance(m, Response) and 100 < m.status < 200 and m.cseq.method == "INVITE"
    ]


def test_reliable_provisionals_are_pracked_in_order() -> None:
    net, alice, bob = setup()
    inv = start(net, alice, bob)
    assert "100rel" in (inv.request.headers.get("Supported") or "")
    bob.dialog.respond(inv.ref, 180, reliable=True, now=net.now)
    bob.dialog.respond(inv.ref, 183, reliable=True, now=net.now)
    net.pump()
    r180, r183 = provisionals(net)
    assert r180.headers.get("Require") == "100rel"
    rseq = int(r180.headers.get("RSeq") or 0)
    # RFC 3262 §3: the 183 waited for the 180's PRACK, and its RSeq is one higher.
    assert int(r183.headers.get("RSeq") or 0) == rseq + 1
    pracks = net.messages(method="PRACK")
    assert [p.headers.get("RAck") for p in pracks] == [
        f"{rseq} {inv.request.cseq.seq} INVITE",
        f"{rseq + 1} {inv.request.cseq.seq} INVITE",
    ]
    assert all(isinstance(p, Request) and p.to.tag == inv.dialog_id.local_tag for p in pracks)
    assert [
        m.status for m in net.messages() if isinstance(m, Response) and m.cseq.method == "PRACK"
    ] == [200, 200]
    assert len(bob.of_type(PrackReceived)) == 2
    assert len(alice.of_type(DialogEarly)) == 1
    assert len(alice.of_type(InviteProgress)) == 2
    bob.dialog.respond(inv.ref, 200, body=b"v=0\r\n", now=net.now)
    net.pump()
    assert alice.of_type(DialogConfirmed)


def test_unreliable_unless_asked_or_required() -> None:
    net, alice, bob = setup()
    inv = start(net, alice, bob)
    bob.dialog.respond(inv.ref, 180, now=net.now)
    net.pump()
    (r180,) = provisionals(net)
    assert "RSeq" not in r180.headers
    assert net.messages(method="PRACK") == []


def test_no_prack_retransmits_then_rejects_with_500() -> None:
    def drop(record: WireRecord) -> bool:
        return isinstance(record.message, Request) and record.message.method == "PRACK"

    net, alice, bob = setup(drop=drop)
    inv = start(net, alice, bob)
    t0 = net.now
    bob.dialog.respond(inv.ref, 180, reliable=True, now=net.now)
    net.advance(40.0)
    sent = [
        r.at - t0 for r in net.wire if isinstance(r.message, Response) and r.message.status == 180
    ]
    # RFC 3262 §3: T1, then doubling (no T2 cap): 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5.
    assert sent == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert alice.dialog.stats["reliable_1xx_discarded"] == 6
    (failed,) = alice.of_type(InviteFailed)
    assert isinstance(failed, InviteFailed)
    assert failed.response.status == 500
    ends = [e for e in bob.events if isinstance(e, DialogTerminated)]
    assert ends == [DialogTerminated(inv.dialog_id, TerminationReason.REJECTED, 500)]


def test_require_100rel_without_support_is_420() -> None:
    net, alice, _bob = setup(supported=("timer",))
    alice.dialog.invite(
        BOB, from_="sip:alice@127.0.0.1", headers=[("Require", "100rel")], now=net.now
    )
    net.pump()
    (resp,) = net.messages(status=420)
    assert isinstance(resp, Response)
    assert resp.headers.get("Unsupported") == "100rel"
    assert alice.of_type(InviteFailed)


def test_stray_prack_is_481() -> None:
    net, alice, bob = setup()
    inv = start(net, alice, bob)
    bob.dialog.respond(inv.ref, 180, now=net.now)
    net.pump()
    early = alice.dialog.dialogs[0]
    prack = early.build_request(
        "PRACK",
        alice.dialog.config,
        __import__("random").Random(0),
        headers=(("RAck", "1 1 INVITE"),),
    )
    bob.dialog.on_request(prack, "p", net.now)
    (action,) = bob.dialog.take_actions()
    assert isinstance(action, SendResponse)
    assert action.response.status == 481
