"""Session timers (RFC 4028) between two agents on the virtual network."""

from __future__ import annotations

import attrs
from hypothesis import given
from hypothesis import strategies as st

from rvoip_dialog_core import (
    DialogConfig,
    DialogConfirmed,
    DialogId,
    DialogTerminated,
    IncomingInvite,
    InviteFailed,
    ReInviteReceived,
    SessionRefreshDue,
    TerminationReason,
)
from rvoip_dialog_core._session_timer import SessionTimers, allows_update
from rvoip_dialog_core._timeline import Timeline
from rvoip_dialog_core.testing import Agent, VirtualNetwork, WireRecord
from rvoip_sip_core import Request, Response, make_request, make_response, parse_uri

BOB = "sip:bob@127.0.0.1:5070"


def setup(
    bob_config: dict[str, object] | None = None, drop: object = None
) -> tuple[VirtualNetwork, Agent, Agent]:
    net = VirtualNetwork(drop=drop)  # type: ignore[arg-type]
    alice = net.add("alice", 5060, seed=1)
    changes = bob_config or {}

    def configure(config: DialogConfig) -> DialogConfig:
        return attrs.evolve(config, **changes)  # type: ignore[arg-type]

    bob = net.add("bob", 5070, seed=2, configure=configure)
    return net, alice, bob


def answer_call(net: VirtualNetwork, alice: Agent, bob: Agent) -> None:
    alice.dialog.invite(BOB, from_="sip:alice@127.0.0.1", body=b"v=0\r\n", now=net.now)
    net.pump()
    (inv,) = bob.of_type(IncomingInvite)
    assert isinstance(inv, IncomingInvite)
    bob.dialog.respond(inv.ref, 200, body=b"v=0\r\n", now=net.now)
    net.pump()


def test_negotiation_and_refresh_by_uac_at_half_interval() -> None:
    net, alice, bob = setup()
    answer_call(net, alice, bob)
    invite = net.messages(method="INVITE")[0]
    assert invite.headers.get("Session-Expires") == "1800"
    assert invite.headers.get("Min-SE") == "90"
    ok = [m for m in net.messages(status=200) if isinstance(m, Response)][-1]
    assert ok.headers.get("Session-Expires") == "1800;refresher=uac"
    assert ok.headers.get("Require") == "timer"
    (confirmed,) = alice.of_type(DialogConfirmed)
    assert isinstance(confirmed, DialogConfirmed)
    timer = alice.dialog.session_timer(confirmed.dialog_id)
    assert timer is not None
    assert (timer.interval, timer.we_refresh, timer.due) == (1800, True, net.now + 900)
    start = net.now
    net.advance(899.0)
    assert net.messages(method="UPDATE") == []
    net.advance(2.0)
    (update,) = net.messages(method="UPDATE")
    assert isinstance(update, Request)
    assert update.body == b""
    assert update.headers.get("Session-Expires") == "1800;refresher=uac"
    # Refreshes keep the call up well past the interval.
    net.advance(4000.0)
    assert len(net.messages(method="UPDATE")) >= 5
    assert net.messages(method="BYE") == []
    assert len(alice.dialog) == 1
    assert len(bob.dialog) == 1
    assert net.now - start > 1800


def test_no_refresh_ends_session_with_bye() -> None:
    cut = {"on": False}

    def drop(record: WireRecord) -> bool:
        return cut["on"] and record.source.port == 5060

    net, alice, bob = setup(drop=drop)
    answer_call(net, alice, bob)
    t0 = net.now
    cut["on"] = True
    net.advance(1800.0)
    byes = [r for r in net.wire if isinstance(r.message, Request) and r.message.method == "BYE"]
    assert byes[0].source == bob.address
    # RFC 4028 §10: expiry at interval - min(32, interval/3) = 1768 s.
    assert byes[0].at - t0 == 1768.0
    ends = [e for e in bob.events if isinstance(e, DialogTerminated)]
    assert ends[0].reason is TerminationReason.SESSION_EXPIRED


def test_422_retried_with_peer_min_se() -> None:
    net, alice, bob = setup({"min_se": 1900})
    answer_call(net, alice, bob)
    invites = net.messages(method="INVITE")
    assert [getattr(m, "status", None) for m in net.messages(status=422)] == [422]
    assert invites[1].headers.get("Session-Expires") == "1900"
    assert invites[1].cseq.seq == invites[0].cseq.seq + 1
    assert invites[1].call_id == invites[0].call_id
    assert alice.of_type(DialogConfirmed)
    assert alice.of_type(InviteFailed) == []


NO_UPDATE = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS")


def test_peer_without_update_in_allow_is_refreshed_by_reinvite() -> None:
    """Bug (issue 13): the refresher sent an UPDATE even when the peer's Allow had none;
    the 405 that came back was the only way the TU heard of the refresh. RFC 3311 §5.1 /
    RFC 4028 §7.4: a peer whose Allow lacks UPDATE is refreshed by re-INVITE, asked of
    the TU at once (no UPDATE on the wire)."""
    net, alice, bob = setup({"allow": NO_UPDATE})
    answer_call(net, alice, bob)
    net.advance(901.0)
    assert net.messages(method="UPDATE") == []
    (due,) = alice.of_type(SessionRefreshDue)
    assert isinstance(due, SessionRefreshDue)
    assert alice.dialog.stats["session_refresh_reinvite"] == 1
    # The TU's re-INVITE (its current SDP) is the refresh: its 2xx restarts the timer.
    alice.dialog.reinvite(due.dialog_id, b"v=0\r\n", now=net.now)
    net.pump()
    reinvite = net.messages(method="INVITE")[-1]
    assert isinstance(reinvite, Request)
    assert reinvite.headers.get("Session-Expires") == "1800;refresher=uac"
    (offer,) = bob.of_type(ReInviteReceived)
    assert isinstance(offer, ReInviteReceived)
    bob.dialog.respond(offer.ref, 200, body=b"v=0\r\n", now=net.now)
    net.pump()
    timer = alice.dialog.session_timer(due.dialog_id)
    assert timer is not None
    assert not timer.refreshing
    assert timer.due == net.now + 900
    net.advance(800.0)
    assert net.messages(method="BYE") == []
    assert len(alice.of_type(SessionRefreshDue)) == 1


def test_update_refresh_refused_405_falls_back_to_reinvite() -> None:
    """A peer that advertised UPDATE at call setup but answers our UPDATE refresh 405 (its
    configuration changed): the refresh falls back to a re-INVITE asked of the TU."""
    net, alice, bob = setup()
    answer_call(net, alice, bob)
    bob.dialog.config = attrs.evolve(bob.dialog.config, allow=NO_UPDATE)
    net.advance(901.0)
    assert [getattr(m, "status", None) for m in net.messages(status=405)] == [405]
    assert len(alice.of_type(SessionRefreshDue)) == 1


def test_refresher_whose_refresh_never_succeeds_ends_the_session() -> None:
    """Bug (issue 13): a refresher whose refresh failed waited for ever (its timer had no
    deadline left), so the call stayed up on our side after the peer's expiry. RFC 4028
    §10: without a successful refresh the session expires at interval - min(32, I/3);
    the refresher ends it with a BYE saying why."""
    net, alice, bob = setup({"allow": NO_UPDATE})
    answer_call(net, alice, bob)
    t0 = net.now
    net.advance(1700.0)
    assert len(alice.of_type(SessionRefreshDue)) == 1  # the TU never re-INVITEs
    net.advance(100.0)
    byes = [r for r in net.wire if isinstance(r.message, Request) and r.message.method == "BYE"]
    assert byes, "the session expired without a BYE"
    assert {b.at - t0 for b in byes} == {1768.0}
    ours = [b for b in byes if b.source == alice.address]
    assert ours
    assert "Session timer expired" in (ours[0].message.headers.get("Reason") or "")
    ends = [e for e in alice.events if isinstance(e, DialogTerminated)]
    assert ends[0].reason is TerminationReason.SESSION_EXPIRED
    assert len(alice.dialog) == 0


def test_422_to_a_refresh_in_the_dialog_is_retried_with_min_se() -> None:
    """RFC 4028 §7.4: a 422 to a session refresh (here our UPDATE, after the peer raised its
    Min-SE) is retried at once with the 422's Min-SE, and later refreshes keep it."""
    net, alice, bob = setup()
    answer_call(net, alice, bob)
    bob.dialog.config = attrs.evolve(bob.dialog.config, min_se=2400)
    net.advance(901.0)
    updates = net.messages(method="UPDATE")
    assert [u.headers.get("Session-Expires") for u in updates] == [
        "1800;refresher=uac",
        "2400;refresher=uac",
    ]
    assert updates[1].cseq.seq == updates[0].cseq.seq + 1
    assert updates[1].headers.get("Min-SE") == "2400"
    (confirmed,) = alice.of_type(DialogConfirmed)
    assert isinstance(confirmed, DialogConfirmed)
    timer = alice.dialog.session_timer(confirmed.dialog_id)
    assert timer is not None
    assert timer.interval == 2400
    assert alice.dialog.stats["session_422_retries"] == 1
    assert alice.of_type(SessionRefreshDue) == []


def test_configured_refresher_is_asked_for_and_chosen() -> None:
    """``session_refresher`` (issue 13): our INVITE asks for it, and as UAS we pick it when
    the INVITE leaves the refresher open; a new config applies to the next dialog."""
    net, alice, bob = setup({"session_refresher": "uas"})
    alice.dialog.config = attrs.evolve(alice.dialog.config, session_expires=600)
    answer_call(net, alice, bob)
    invite = net.messages(method="INVITE")[0]
    assert invite.headers.get("Session-Expires") == "600"
    ok = [m for m in net.messages(status=200) if isinstance(m, Response)][-1]
    assert ok.headers.get("Session-Expires") == "600;refresher=uas"
    config = DialogConfig(
        contact="sip:b@127.0.0.1", via_host="127.0.0.1", via_port=1, session_refresher="uac"
    )
    assert SessionTimers(config).request_headers(None)[0] == (
        "Session-Expires",
        "1800;refresher=uac",
    )


def test_without_timer_support_no_session_timer() -> None:
    net, alice, bob = setup({"supported": ()})
    answer_call(net, alice, bob)
    ok = [m for m in net.messages(status=200) if isinstance(m, Response)][-1]
    assert "Session-Expires" not in ok.headers
    net.advance(5000.0)
    assert net.messages(method="UPDATE") == []
    assert len(bob.dialog) == 1


def test_answer_picks_refresher() -> None:
    config = DialogConfig(contact="sip:b@127.0.0.1", via_host="127.0.0.1", via_port=1)
    timers = SessionTimers(config)

    def invite(headers: list[tuple[str, str]]) -> Request:
        return make_request(
            "INVITE",
            parse_uri(BOB),
            from_="<sip:a@h>;tag=1",
            to="<sip:b@h>",
            call_id="c",
            cseq=1,
            via="SIP/2.0/UDP h;branch=z9hG4bK1",
            headers=headers,
        )

    assert timers.answer(invite([]))[1] is None
    assert timers.answer(invite([("Session-Expires", "600")]))[1] == (600, "uas")
    both = invite([("Session-Expires", "600"), ("Supported", "timer")])
    assert timers.answer(both)[1] == (600, "uac")
    asked = invite([("Session-Expires", "600;refresher=uas"), ("Supported", "timer")])
    assert timers.answer(asked)[1] == (600, "uas")
    assert timers.too_small(invite([("Session-Expires", "60")])) == 90


def test_timers_heap_skips_stopped_and_replaced_timers() -> None:
    """Stopped or restarted timers never surface as deadlines, and their entries are dropped."""
    config = DialogConfig(contact="sip:b@127.0.0.1", via_host="127.0.0.1", via_port=1)
    timeline = Timeline()
    timers = SessionTimers(config, timeline)
    ids = [DialogId(f"c{i}", "l", "r") for i in range(500)]
    for i, did in enumerate(ids):
        timers.start(did, 100, we_refresh=True, now=float(i))
    for did in ids[:-2]:
        timers.stop(did)
    timers.start(ids[-1], 1000, we_refresh=True, now=0.0)  # replaced: due 500, not 549
    assert timers.next_deadline() == 500.0
    timers.stop(ids[-1])
    assert timers.next_deadline() == 498.0 + 50.0
    timers.start(ids[-1], 1000, we_refresh=True, now=0.0)
    assert len(timeline) < 200  # stale entries compacted away
    assert [did for did, _ in timers.due(10_000.0)] == [ids[-1], ids[-2]]
    # RFC 4028 §10: a refresher's timer then waits for the expiry (no refresh succeeded).
    assert timers.next_deadline() == 498.0 + 100 - 32
    assert [did for did, _ in timers.due(10_000.0)] == [ids[-2], ids[-1]]
    assert timers.next_deadline() is None
    assert len(timers) == 0


def test_422_retry_keeps_defer_ack() -> None:
    """Regression: the INVITE resent after a 422 (RFC 4028 §7.4) was a new client
    transaction without ``defer_ack``, so its 2xx was ACKed by the layer at once and the
    TU, waiting to send the SDP answer in the ACK (offer-less INVITE), could not: ``ack()``
    then raised "no 2xx waiting for an ACK"."""
    net, alice, bob = setup({"min_se": 1900})
    alice.dialog.invite(BOB, from_="sip:alice@127.0.0.1", defer_ack=True, now=net.now)
    net.pump()
    (invite,) = bob.of_type(IncomingInvite)
    assert isinstance(invite, IncomingInvite)
    bob.dialog.respond(invite.ref, 200, body=b"v=0\r\n", now=net.now)
    net.pump()
    retried = net.messages(method="INVITE")[1]
    assert isinstance(retried, Request)

    def acks_of_2xx() -> list[Request]:
        return [
            m
            for m in net.messages(method="ACK")
            if isinstance(m, Request) and m.cseq.seq == retried.cseq.seq
        ]

    assert acks_of_2xx() == []  # held for the TU
    (confirmed,) = alice.of_type(DialogConfirmed)
    assert isinstance(confirmed, DialogConfirmed)
    alice.dialog.ack(confirmed.dialog_id, b"v=0\r\n", now=net.now)
    net.pump()
    (ack,) = acks_of_2xx()
    assert ack.body == b"v=0\r\n"


METHOD = st.sampled_from(
    ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE", "update", "Update", "PRACK"]
)


@given(
    lines=st.lists(st.lists(METHOD, min_size=1, max_size=6), max_size=3),
    spaces=st.sampled_from([",", ", ", " ,  "]),
)
def test_allows_update_reads_every_allow_line(lines: list[list[str]], spaces: str) -> None:
    """``allows_update``: None without Allow, else whether any Allow line names UPDATE (in
    any case, split over several lines or not), as RFC 3261 §7.3.1 lets a list header be."""
    headers = [("Allow", spaces.join(methods)) for methods in lines]
    response = make_response(
        make_request(
            "UPDATE",
            parse_uri(BOB),
            from_="<sip:a@h>;tag=1",
            to="<sip:b@h>;tag=2",
            call_id="c",
            cseq=1,
            via="SIP/2.0/UDP h;branch=z9hG4bK1",
        ),
        200,
        headers=headers,
    )
    expected = None if not lines else any(m.upper() == "UPDATE" for ms in lines for m in ms)
    assert allows_update(response) is expected
