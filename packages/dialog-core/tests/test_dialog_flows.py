"""Call flows between dialog layers over real transaction layers on a virtual network."""

from __future__ import annotations

import random

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from rvoip_dialog_core import (
    AckReceived,
    ByeReceived,
    DialogConfirmed,
    DialogId,
    DialogTerminated,
    GlareRetryScheduled,
    IncomingInvite,
    InfoReceived,
    InviteFailed,
    NotifyReceived,
    ReferReceived,
    ReInviteReceived,
    RequestReceived,
    ResponseForRequest,
    TerminationReason,
    UpdateReceived,
)
from rvoip_dialog_core.testing import Agent, VirtualNetwork, WireRecord
from rvoip_sip_core import Request, Response

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)
BOB = "sip:bob@127.0.0.1:5070"


def pair(drop: object = None) -> tuple[VirtualNetwork, Agent, Agent]:
    net = VirtualNetwork(drop=drop)  # type: ignore[arg-type]
    return net, net.add("alice", 5060, seed=1), net.add("bob", 5070, seed=2)


def incoming(agent: Agent) -> IncomingInvite:
    (event,) = agent.of_type(IncomingInvite)
    assert isinstance(event, IncomingInvite)
    return event


def call(net: VirtualNetwork, alice: Agent, bob: Agent) -> tuple[DialogId, DialogId]:
    """Alice calls Bob, Bob rings and answers; returns both dialog ids once ACKed."""
    alice.dialog.invite(BOB, from_="sip:alice@127.0.0.1", body=SDP, now=net.now)
    net.pump()
    inv = incoming(bob)
    bob.dialog.respond(inv.ref, 180, now=net.now)
    net.pump()
    bob.dialog.respond(inv.ref, 200, body=SDP, now=net.now)
    net.pump()
    (confirmed,) = alice.of_type(DialogConfirmed)
    assert isinstance(confirmed, DialogConfirmed)
    assert bob.of_type(AckReceived)
    return confirmed.dialog_id, inv.dialog_id


def statuses(net: VirtualNetwork, method: str) -> list[int]:
    return [m.status for m in net.messages() if isinstance(m, Response) and m.cseq.method == method]


def test_invite_ringing_ok_ack_bye() -> None:
    net, alice, bob = pair()
    a_id, b_id = call(net, alice, bob)
    assert a_id == DialogId(b_id.call_id, b_id.remote_tag, b_id.local_tag)
    assert [m.method for m in net.messages() if isinstance(m, Request)] == ["INVITE", "ACK"]
    assert statuses(net, "INVITE") == [100, 180, 200]
    alice.dialog.bye(a_id, now=net.now)
    net.pump()
    assert statuses(net, "BYE") == [200]
    assert isinstance(bob.of_type(ByeReceived)[0], ByeReceived)
    assert DialogTerminated(b_id, TerminationReason.REMOTE_BYE) in bob.events
    assert DialogTerminated(a_id, TerminationReason.LOCAL_BYE) in alice.events
    net.advance(64.0)
    for agent in (alice, bob):
        assert sum(agent.dialog.pending().values()) == 0
        assert len(agent.txn) == 0


def test_cancel_before_answer_gives_487() -> None:
    net, alice, bob = pair()
    leg = alice.dialog.invite(BOB, from_="sip:alice@127.0.0.1", body=SDP, now=0.0)
    net.pump()
    inv = incoming(bob)
    bob.dialog.respond(inv.ref, 180, now=net.now)
    net.pump()
    alice.dialog.cancel(leg, now=net.now)
    net.pump()
    assert statuses(net, "CANCEL") == [200]
    assert statuses(net, "INVITE")[-1] == 487
    (failed,) = alice.of_type(InviteFailed)
    assert isinstance(failed, InviteFailed)
    assert failed.response.status == 487
    assert DialogTerminated(inv.dialog_id, TerminationReason.CANCELLED, 487) in bob.events
    net.advance(64.0)
    assert sum(alice.dialog.pending().values()) == 0
    assert sum(bob.dialog.pending().values()) == 0


def test_forking_second_2xx_is_acked_then_byed() -> None:
    """A forking proxy is simulated by a second callee answering the same INVITE."""
    net, alice, bob = pair()
    carol = net.add("carol", 5080, seed=3)
    alice.dialog.invite(BOB, from_="sip:alice@127.0.0.1", body=SDP, now=0.0)
    net.pump()
    inv = incoming(bob)
    # Carol receives a copy of the same INVITE (as a forking proxy would send it).
    carol.dialog.on_request(inv.request, "fork", net.now)
    carol_inv = carol.dialog.take_events()[0]
    assert isinstance(carol_inv, IncomingInvite)
    bob.dialog.respond(inv.ref, 200, body=SDP, now=net.now)
    net.pump()
    # Carol's 2xx goes straight to Alice (as the proxy would forward it).
    carol_ok = carol.dialog.respond(carol_inv.ref, 200, body=SDP, now=net.now)
    carol.dialog.take_actions()
    alice.txn.receive(carol_ok.encode(), carol.address, net.now)
    net.pump()
    (confirmed,) = alice.of_type(DialogConfirmed)
    assert isinstance(confirmed, DialogConfirmed)
    assert confirmed.dialog_id.remote_tag == inv.dialog_id.local_tag
    to_carol = [r.message for r in net.wire if r.target == carol.address]
    assert [m.method for m in to_carol if isinstance(m, Request)] == ["ACK", "BYE"]
    assert carol.of_type(ByeReceived)
    assert len(alice.dialog) == 1


def test_2xx_retransmitted_until_ack_and_bye_after_64_t1_without_ack() -> None:
    def lose_acks(record: WireRecord) -> bool:
        return isinstance(record.message, Request) and record.message.method == "ACK"

    net, alice, bob = pair(drop=lose_acks)
    alice.dialog.invite(BOB, from_="sip:alice@127.0.0.1", body=SDP, now=0.0)
    net.pump()
    inv = incoming(bob)
    bob.dialog.respond(inv.ref, 200, body=SDP, now=net.now)
    net.advance(40.0)
    oks = [
        r
        for r in net.wire
        if isinstance(r.message, Response)
        and r.message.status == 200
        and r.message.cseq.method == "INVITE"
    ]
    # RFC 3261 §13.3.1.4: sent at 0, then 0.5, 1.5, 3.5, 7.5, 11.5, … until 64*T1 = 32 s.
    assert [r.at for r in oks][:6] == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5]
    assert all(r.at < 32.0 for r in oks)
    acks = [r for r in net.wire if isinstance(r.message, Request) and r.message.method == "ACK"]
    assert len(acks) == len(oks)  # every 2xx retransmission was ACKed again
    byes = [r for r in net.wire if isinstance(r.message, Request) and r.message.method == "BYE"]
    assert byes
    assert byes[0].at == 32.0
    assert byes[0].source == bob.address
    assert DialogTerminated(inv.dialog_id, TerminationReason.ACK_TIMEOUT) in bob.events
    assert any(
        isinstance(e, DialogTerminated) and e.reason is TerminationReason.REMOTE_BYE
        for e in alice.events
    )


def test_reinvite_glare_both_get_491_and_retry_in_rfc_windows() -> None:
    net, alice, bob = pair()
    a_id, b_id = call(net, alice, bob)
    t0 = net.now
    a_ref = alice.dialog.reinvite(a_id, SDP, now=t0)
    b_ref = bob.dialog.reinvite(b_id, SDP, now=t0)
    net.pump()
    assert statuses(net, "INVITE").count(491) == 2
    (a_glare,) = alice.of_type(GlareRetryScheduled)
    (b_glare,) = bob.of_type(GlareRetryScheduled)
    assert isinstance(a_glare, GlareRetryScheduled)
    assert isinstance(b_glare, GlareRetryScheduled)
    # RFC 3261 §14.1: Alice generated the Call-ID: 2.1–4 s; Bob did not: 0–2 s.
    assert 2.1 <= a_glare.at - t0 <= 4.0
    assert 0.0 <= b_glare.at - t0 <= 2.0
    for _ in range(300):  # both TUs answer re-INVITEs at once, for 30 virtual seconds
        for agent in (alice, bob):
            for e in agent.of_type(ReInviteReceived):
                assert isinstance(e, ReInviteReceived)
                agent.dialog.respond(e.ref, 200, body=SDP, now=net.now)
                agent.events.remove(e)
        net.advance(0.1)
    done_a = [
        e
        for e in alice.of_type(ResponseForRequest)
        if isinstance(e, ResponseForRequest) and e.ref == a_ref
    ]
    done_b = [
        e
        for e in bob.of_type(ResponseForRequest)
        if isinstance(e, ResponseForRequest) and e.ref == b_ref
    ]
    assert done_a[-1].response.status == 200
    assert done_b[-1].response.status == 200


def test_refer_notify_sipfrag_flow() -> None:
    net, alice, bob = pair()
    a_id, _b_id = call(net, alice, bob)
    alice.dialog.refer(a_id, "sip:carol@127.0.0.1:5080", now=net.now)
    net.pump()
    (refer,) = bob.of_type(ReferReceived)
    assert isinstance(refer, ReferReceived)
    sub = bob.dialog.accept_refer(refer.ref, now=net.now)
    net.pump()
    bob.dialog.notify_refer(sub, 180, "Ringing", now=net.now)
    net.pump()
    bob.dialog.notify_refer(sub, 200, "OK", now=net.now)
    net.pump()
    assert statuses(net, "REFER") == [202]
    notifies = [e for e in alice.of_type(NotifyReceived) if isinstance(e, NotifyReceived)]
    assert [(n.event, n.sipfrag_status, n.terminated) for n in notifies] == [
        ("refer", 100, False),
        ("refer", 180, False),
        ("refer", 200, True),
    ]
    assert statuses(net, "NOTIFY") == [200, 200, 200]


def test_481_420_415_over_the_network() -> None:
    net, alice, bob = pair()
    a_id, _ = call(net, alice, bob)
    dialog = alice.dialog.dialog(a_id)
    assert dialog is not None
    # 420: Alice requires an extension Bob does not know.
    alice.dialog.request(a_id, "OPTIONS", headers=[("Require", "x-magic")], now=net.now)
    net.pump()
    (resp,) = list(net.messages(status=420))
    assert isinstance(resp, Response)
    assert resp.headers.get("Unsupported") == "x-magic"
    # 415: an INFO body Bob does not accept.
    alice.dialog.info(a_id, b"hello", "text/plain", now=net.now)
    net.pump()
    assert statuses(net, "INFO") == [415]
    alice.dialog.info(a_id, b"Signal=1\r\nDuration=100\r\n", "application/dtmf-relay", now=net.now)
    net.pump()
    assert statuses(net, "INFO") == [415, 200]
    assert bob.of_type(InfoReceived)
    # 481: Bob forgets the dialog; Alice's next request ends hers.
    bob.dialog.bye(DialogId(a_id.call_id, a_id.remote_tag, a_id.local_tag), now=net.now)
    bob.dialog.take_actions()  # the BYE is lost
    alice.dialog.update(a_id, SDP, now=net.now)
    net.pump()
    assert statuses(net, "UPDATE") == [481]
    assert DialogTerminated(a_id, TerminationReason.NO_DIALOG, 481) in alice.events


def test_update_is_target_refresh() -> None:
    net, alice, bob = pair()
    a_id, _b_id = call(net, alice, bob)
    alice.dialog.update(a_id, SDP, now=net.now)
    net.pump()
    (update,) = bob.of_type(UpdateReceived)
    assert isinstance(update, UpdateReceived)
    bob.dialog.respond(update.ref, 200, body=SDP, now=net.now)
    net.pump()
    assert statuses(net, "UPDATE") == [200]


def test_invite_to_nobody_times_out_408() -> None:
    net = VirtualNetwork()
    alice = net.add("alice", 5060, seed=1)
    leg = alice.dialog.invite("sip:nobody@127.0.0.1:5999", from_="sip:alice@127.0.0.1", now=0.0)
    net.advance(40.0)
    (failed,) = alice.of_type(InviteFailed)
    assert isinstance(failed, InviteFailed)
    assert failed.leg == leg
    assert failed.response.status == 408


METHODS = ["INFO", "OPTIONS", "UPDATE", "INVITE", "BYE", "NOTIFY", "REFER", "FOO", "MESSAGE"]


@settings(max_examples=30)
@given(
    st.lists(st.tuples(st.booleans(), st.sampled_from(METHODS), st.booleans()), max_size=12),
    st.integers(min_value=0, max_value=1000),
)
def test_random_in_dialog_requests_never_raise(
    steps: list[tuple[bool, str, bool]], seed: int
) -> None:
    """Any order of in-dialog requests from either side: no exception, CSeq rules hold."""
    net, alice, bob = pair()
    rng = random.Random(seed)
    a_id, b_id = call(net, alice, bob)
    for from_alice, method, answer in steps:
        agent, did = (alice, a_id) if from_alice else (bob, b_id)
        dialog = agent.dialog.dialog(did)
        if dialog is None:
            break
        seq_before = dialog.local_seq
        headers = [("Event", "refer")] if method == "NOTIFY" else []
        if method == "REFER":
            headers = [("Refer-To", "<sip:carol@127.0.0.1>")]
        try:
            if method == "INVITE" and dialog.state.value != "confirmed":
                continue
            agent.dialog.request(did, method, headers=headers, now=net.now)
        except Exception as exc:  # pragma: no cover - the property is that this never happens
            raise AssertionError(f"{method} raised {exc!r}") from exc
        assert dialog.local_seq is not None
        assert seq_before is None or dialog.local_seq == seq_before + 1
        net.pump()
        for other in (alice, bob):
            for event in list(other.events):
                ref = getattr(event, "ref", None)
                if isinstance(event, (ReInviteReceived, UpdateReceived, ReferReceived)) or (
                    ref is not None
                    and not isinstance(
                        event, (ResponseForRequest, GlareRetryScheduled, IncomingInvite)
                    )
                ):
                    try:
                        other.dialog.respond(ref, 200 if answer else 488, now=net.now)  # type: ignore[arg-type]
                    except Exception:
                        pass
                    other.events.remove(event)
        net.advance(rng.choice([0.0, 0.5, 5.0]))
    net.advance(70.0)
    # Every dialog ended through its transition table; remote CSeqs never went down.
    for agent in (alice, bob):
        assert not [k for k in agent.dialog.stats if k.startswith("forced_end")]
        for d in agent.dialog.dialogs:
            assert d.remote_seq is None or d.remote_seq >= 1


def test_challenged_invite_retried_on_the_same_leg() -> None:
    """RFC 3261 §22.2: same Call-ID and From tag, CSeq + 1, with the credentials."""
    net, alice, bob = pair()
    leg = alice.dialog.invite(BOB, from_="sip:alice@127.0.0.1", body=SDP, now=net.now)
    net.pump()
    first = incoming(bob)
    bob.dialog.respond(first.ref, 401, headers=[("WWW-Authenticate", 'Digest realm="x"')], now=0)
    net.pump()
    (failed,) = alice.of_type(InviteFailed)
    assert isinstance(failed, InviteFailed)
    assert failed.response.status == 401
    bob.events.clear()
    again = alice.dialog.invite(
        BOB,
        from_="sip:alice@127.0.0.1",
        body=SDP,
        call_id=leg.call_id,
        tag=leg.local_tag,
        cseq=first.request.cseq.seq + 1,
        headers=[("Authorization", 'Digest username="alice"')],
        now=net.now,
    )
    assert again == leg
    net.pump()
    second = incoming(bob)
    assert second.request.headers.get("Authorization") == 'Digest username="alice"'
    bob.dialog.respond(second.ref, 200, body=SDP, now=net.now)
    net.pump()
    (confirmed,) = alice.of_type(DialogConfirmed)
    assert isinstance(confirmed, DialogConfirmed)
    assert confirmed.dialog_id.leg == leg


def test_out_of_dialog_options_and_message() -> None:
    net = VirtualNetwork()
    alice = net.add("alice", 5060, seed=1)
    bob = net.add(
        "bob", 5070, seed=2, configure=lambda c: attrs.evolve(c, extra_methods=("MESSAGE",))
    )
    ref = alice.dialog.send_request("OPTIONS", BOB, from_="sip:alice@127.0.0.1", now=0.0)
    net.pump()
    (done,) = alice.of_type(ResponseForRequest)
    assert isinstance(done, ResponseForRequest)
    assert done.ref == ref
    assert done.dialog_id is None
    assert done.response.status == 200
    assert "Allow" in done.response.headers
    msg_ref = alice.dialog.send_request(
        "MESSAGE", BOB, from_="sip:alice@127.0.0.1", body=b"hi", content_type="text/plain", now=0.0
    )
    net.pump()
    (received,) = bob.of_type(RequestReceived)
    assert isinstance(received, RequestReceived)
    assert received.request.body == b"hi"
    bob.dialog.respond(received.ref, 202, now=net.now)
    net.pump()
    answers = [e for e in alice.of_type(ResponseForRequest) if isinstance(e, ResponseForRequest)]
    assert [(a.ref, a.response.status) for a in answers] == [(ref, 200), (msg_ref, 202)]
    net.advance(40.0)
    assert sum(alice.dialog.pending().values()) == 0


def test_many_sequential_calls_leave_nothing_behind() -> None:
    net, alice, bob = pair()
    for i in range(100):
        alice.dialog.invite(BOB, from_="sip:alice@127.0.0.1", body=SDP, now=net.now)
        net.pump()
        (inv,) = bob.of_type(IncomingInvite)
        assert isinstance(inv, IncomingInvite)
        if i % 3 == 0:
            bob.dialog.respond(inv.ref, 486, now=net.now)
        else:
            bob.dialog.respond(inv.ref, 200, body=SDP, now=net.now)
        net.pump()
        for agent, _other in ((alice, bob), (bob, alice)):
            for did in [d.id for d in agent.dialog.dialogs if d.state.value == "confirmed"]:
                if (agent is alice) == (i % 2 == 0):
                    agent.dialog.bye(did, now=net.now)
        net.pump()
        alice.events.clear()
        bob.events.clear()
        net.advance(1.0)
    net.advance(70.0)
    for agent in (alice, bob):
        assert sum(agent.dialog.pending().values()) == 0, agent.dialog.pending()
        assert len(agent.txn) == 0
        assert agent.dialog.pending()["session_timers"] == 0


def test_invite_with_replaces_names_the_dialog_it_replaces() -> None:
    """RFC 3891: attended transfer; unknown dialogs get 481, early-only on confirmed 486."""
    net, alice, bob = pair()
    carol = net.add("carol", 5080, seed=3)
    _, b_id = call(net, alice, bob)
    bob.events.clear()
    replaces = f"{b_id.call_id};to-tag={b_id.local_tag};from-tag={b_id.remote_tag}"
    carol.dialog.invite(
        BOB, from_="sip:carol@127.0.0.1", headers=[("Replaces", replaces)], now=net.now
    )
    net.pump()
    inv = incoming(bob)
    assert inv.replaces == b_id
    bob.dialog.respond(inv.ref, 603, now=net.now)
    for bad, status in (
        (f"{b_id.call_id};to-tag=nope;from-tag={b_id.remote_tag}", 481),
        (f"{replaces};early-only", 486),
    ):
        carol.dialog.invite(
            BOB, from_="sip:carol@127.0.0.1", headers=[("Replaces", bad)], now=net.now
        )
        net.pump()
        assert [getattr(m, "status", None) for m in net.messages(status=status)] == [status]
    assert len(bob.of_type(IncomingInvite)) == 1


def test_replaces_of_an_early_dialog_depends_on_who_initiated_it() -> None:
    """RFC 3891 §3: an early dialog we initiated may be replaced, one we answer may not.

    Bob rings Alice's call (an early dialog where Bob is the UAS): a Replaces naming it is
    refused 481. Bob's own ringing call to Carol (Bob the UAC) is offered to the TU.
    """
    net, alice, bob = pair()
    carol = net.add("carol", 5080, seed=3)
    alice.dialog.invite(BOB, from_="sip:alice@127.0.0.1", body=SDP, now=net.now)
    net.pump()
    inv = incoming(bob)
    bob.dialog.respond(inv.ref, 180, now=net.now)
    net.pump()
    early = inv.dialog_id
    uas_early = f"{early.call_id};to-tag={early.local_tag};from-tag={early.remote_tag}"
    carol.dialog.invite(
        BOB, from_="sip:carol@127.0.0.1", headers=[("Replaces", uas_early)], now=net.now
    )
    net.pump()
    assert [m.status for m in net.messages(status=481)] == [481]
    bob.events.clear()
    # Bob calls Carol; Carol rings: Bob's early dialog as UAC.
    bob.dialog.invite("sip:carol@127.0.0.1:5080", from_="sip:bob@127.0.0.1", body=SDP, now=net.now)
    net.pump()
    to_carol = incoming(carol)
    carol.dialog.respond(to_carol.ref, 180, now=net.now)
    net.pump()
    (uac_early,) = [d for d in bob.dialog.dialogs if d.id.call_id == to_carol.request.call_id]
    did = uac_early.id
    alice.dialog.invite(
        BOB,
        from_="sip:alice@127.0.0.1",
        headers=[("Replaces", f"{did.call_id};to-tag={did.local_tag};from-tag={did.remote_tag}")],
        now=net.now,
    )
    net.pump()
    replacing = [e for e in bob.of_type(IncomingInvite) if isinstance(e, IncomingInvite)]
    assert [e.replaces for e in replacing] == [did]


def test_two_replaces_headers_are_refused_with_400() -> None:
    """RFC 3891 §3: more than one Replaces in an INVITE is a 400 (it was matched on the first)."""
    net, alice, bob = pair()
    carol = net.add("carol", 5080, seed=3)
    _, b_id = call(net, alice, bob)
    bob.events.clear()
    replaces = f"{b_id.call_id};to-tag={b_id.local_tag};from-tag={b_id.remote_tag}"
    carol.dialog.invite(
        BOB,
        from_="sip:carol@127.0.0.1",
        headers=[("Replaces", replaces), ("Replaces", replaces)],
        now=net.now,
    )
    net.pump()
    assert [m.status for m in net.messages(status=400)] == [400]
    assert not bob.of_type(IncomingInvite)
