"""SUBSCRIBE/NOTIFY (RFC 6665) between dialog layers on the virtual network (virtual time)."""

from __future__ import annotations

import random

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rvoip_dialog_core import (
    Credentials,
    DialogConfig,
    DialogLayer,
    DialogTerminated,
    DialogUsageError,
    SendRequest,
    SendResponse,
    ServedSubscriptionEnded,
    ServedSubscriptionRefreshed,
    SubscribeReceived,
    SubscriptionAccepted,
    SubscriptionEnded,
    SubscriptionNotified,
    TerminationReason,
)
from rvoip_dialog_core.testing import Agent, VirtualNetwork, WireRecord
from rvoip_sip_core import (
    DigestServer,
    Event,
    Request,
    Response,
    SubscriptionState,
    make_request,
    make_response,
    parse_uri,
)

BOB = "sip:bob@127.0.0.1:5070"
DOC = b"<dialog-info/>"
CTYPE = "application/dialog-info+xml"


def _serving(config: DialogConfig) -> DialogConfig:
    return attrs.evolve(config, event_packages=("dialog", "message-summary"))


def pair(
    drop: object = None, *, configure_bob: object = None
) -> tuple[VirtualNetwork, Agent, Agent]:
    net = VirtualNetwork(drop=drop)  # type: ignore[arg-type]
    alice = net.add("alice", 5060, seed=1)
    bob = net.add("bob", 5070, seed=2, configure=configure_bob or _serving)  # type: ignore[arg-type]
    return net, alice, bob


def received(agent: Agent) -> SubscribeReceived:
    events = agent.of_type(SubscribeReceived)
    assert events, "no SubscribeReceived"
    event = events[-1]
    assert isinstance(event, SubscribeReceived)
    return event


def notified(agent: Agent) -> list[SubscriptionNotified]:
    return [e for e in agent.events if isinstance(e, SubscriptionNotified)]


def ended(agent: Agent) -> list[SubscriptionEnded]:
    return [e for e in agent.events if isinstance(e, SubscriptionEnded)]


def served_ended(agent: Agent) -> list[ServedSubscriptionEnded]:
    return [e for e in agent.events if isinstance(e, ServedSubscriptionEnded)]


def statuses(net: VirtualNetwork, method: str) -> list[int]:
    return [m.status for m in net.messages() if isinstance(m, Response) and m.cseq.method == method]


def subscribe_calls(net: VirtualNetwork) -> int:
    """Initial SUBSCRIBEs sent (each a fresh Call-ID; retransmissions not counted)."""
    return len({m.call_id for m in net.messages(method="SUBSCRIBE")})


def states(net: VirtualNetwork) -> list[str]:
    return [
        m.headers.get("Subscription-State") or ""
        for m in net.messages(method="NOTIFY")
        if isinstance(m, Request)
    ]


def subscribed(
    net: VirtualNetwork, alice: Agent, bob: Agent, expires: int = 600
) -> tuple[int, int]:
    """Alice subscribes to Bob's dialog package, Bob accepts: (alice's ref, bob's ref)."""
    ref = alice.dialog.subscribe(
        BOB, from_="sip:alice@127.0.0.1", event="dialog", expires=expires, now=net.now
    )
    net.pump()
    sub = received(bob)
    bob.dialog.accept_subscription(sub.ref, body=DOC, content_type=CTYPE, now=net.now)
    net.pump()
    return ref, sub.ref


def test_subscribe_accept_immediate_notify_and_change() -> None:
    net, alice, bob = pair()
    ref, served = subscribed(net, alice, bob)
    assert statuses(net, "SUBSCRIBE") == [200]
    (accepted,) = alice.of_type(SubscriptionAccepted)
    assert isinstance(accepted, SubscriptionAccepted)
    assert accepted.expires == 600
    (first,) = notified(alice)
    assert (first.ref, first.state, first.body, first.content_type) == (ref, "active", DOC, CTYPE)
    assert first.expires is not None
    assert 595 <= first.expires <= 600
    bob.dialog.notify_subscriber(served, b"<changed/>", CTYPE, now=net.now)
    net.pump()
    assert [n.body for n in notified(alice)] == [DOC, b"<changed/>"]
    assert statuses(net, "NOTIFY") == [200, 200]
    # Both sides keep one dialog, the same one seen from each end.
    assert len(alice.dialog) == 1
    assert len(bob.dialog) == 1
    sub = received(bob)
    request = sub.request
    assert request.headers.get("Event") == "dialog"


def test_refresh_before_expiry_keeps_the_subscription() -> None:
    """The subscriber refreshes ahead of expiry; the notifier re-sends the state (§4.2.1.2)."""
    net, alice, bob = pair()
    ref, served = subscribed(net, alice, bob, expires=120)
    net.advance(1000)
    subscribes = [m for m in net.messages(method="SUBSCRIBE") if isinstance(m, Request)]
    assert len(subscribes) > 5
    assert all(m.headers.get("Expires") == "120" for m in subscribes)
    assert all(m.to.tag is not None for m in subscribes[1:])  # refreshes are in the dialog
    assert not ended(alice)
    assert not served_ended(bob)
    assert alice.dialog.subscription(ref) is not None
    assert bob.dialog.subscription(served) is not None
    assert len(notified(alice)) == len(subscribes)


def test_notifier_sends_final_notify_at_expiry() -> None:
    """No refresh (the subscriber's refreshes are lost): terminated;reason=timeout."""

    def drop(record: WireRecord) -> bool:
        msg = record.message
        return isinstance(msg, Request) and msg.method == "SUBSCRIBE" and msg.to.tag is not None

    net, alice, bob = pair(drop)
    _ref, _served = subscribed(net, alice, bob, expires=100)
    net.advance(200)
    assert [e.reason for e in served_ended(bob)] == ["timeout"]
    assert states(net)[-1] == "terminated;reason=timeout"
    # Alice's refresh timed out (408 ends the dialog, RFC 3261 §12.2.1.2) before that:
    # her side already ended and the final NOTIFY found no dialog.
    assert [e.reason for e in ended(alice)] == ["dialog-ended"]
    assert statuses(net, "NOTIFY")[-1] == 481
    assert bob.dialog.pending()["served_subscriptions"] == 0
    assert len(bob.dialog) == 0
    assert len(alice.dialog) == 0


def test_unsubscribe_gets_final_notify_and_frees_everything() -> None:
    net, alice, bob = pair()
    ref, _served = subscribed(net, alice, bob)
    alice.dialog.unsubscribe(ref, now=net.now)
    net.pump()
    last = [m for m in net.messages(method="SUBSCRIBE") if isinstance(m, Request)][-1]
    assert last.headers.get("Expires") == "0"
    assert states(net)[-1] == "terminated;reason=timeout"
    assert [e.reason for e in ended(alice)] == ["unsubscribed"]
    assert [e.reason for e in served_ended(bob)] == ["unsubscribed"]
    for agent in (alice, bob):
        assert len(agent.dialog) == 0
        counts = agent.dialog.pending()
        assert counts["subscriptions"] == counts["served_subscriptions"] == 0
        (term,) = agent.of_type(DialogTerminated)
        assert isinstance(term, DialogTerminated)
        assert term.reason is TerminationReason.SUBSCRIPTION_ENDED


def test_notify_before_the_2xx_creates_the_dialog() -> None:
    """RFC 6665 §4.1.2.4: the NOTIFY may overtake the 2xx (here the 2xx is lost once)."""
    lost: list[Response] = []

    def drop(record: WireRecord) -> bool:
        msg = record.message
        if isinstance(msg, Response) and msg.cseq.method == "SUBSCRIBE" and not lost:
            lost.append(msg)
            return True
        return False

    net, alice, bob = pair(drop)
    _ref, served = subscribed(net, alice, bob)
    # Bob's NOTIFY reached Alice before any 2xx did: the dialog came from it.
    assert alice.dialog.stats["subscription_early_notify"] == 1
    (first,) = notified(alice)[:1]
    assert first.state == "active"
    net.advance(5)  # the SUBSCRIBE retransmission gets the 2xx now
    assert alice.of_type(SubscriptionAccepted)
    assert len(alice.dialog) == 1
    bob.dialog.notify_subscriber(served, b"<again/>", CTYPE, now=net.now)
    net.pump()
    assert notified(alice)[-1].body == b"<again/>"


def test_notify_for_unknown_subscription_is_481() -> None:
    net, alice, bob = pair()
    ref, _served = subscribed(net, alice, bob)
    alice.dialog.unsubscribe(ref, now=net.now)
    net.pump()
    # Bob has forgotten it too; an out-of-the-blue NOTIFY to Alice gets 481.
    stray = alice.dialog.send_request(
        "NOTIFY",
        "sip:alice@127.0.0.1:5060",
        from_="sip:bob@127.0.0.1:5070",
        headers=[("Event", "dialog"), ("Subscription-State", "active;expires=60")],
        now=net.now,
    )
    assert stray
    net.pump()
    assert statuses(net, "NOTIFY")[-1] == 481
    assert alice.dialog.stats["notify_unmatched"] == 1


@pytest.mark.parametrize(
    ("reason", "resubscribes"),
    [
        ("rejected", False),
        ("noresource", False),
        ("invariant", False),
        ("deactivated", True),
        ("timeout", True),
    ],
)
def test_termination_reasons(reason: str, resubscribes: bool) -> None:
    """RFC 6665 §4.1.3: deactivated/timeout resubscribe at once; the others end it."""
    net, alice, bob = pair()
    ref, served = subscribed(net, alice, bob)
    bob.dialog.terminate_subscription(served, reason, now=net.now)
    net.pump()
    assert states(net)[-1] == f"terminated;reason={reason}"
    last = notified(alice)[-1]
    assert (last.state, last.reason, last.resubscribing) == ("terminated", reason, resubscribes)
    subscribes = [m for m in net.messages(method="SUBSCRIBE") if isinstance(m, Request)]
    if resubscribes:
        assert len(subscribes) == 2
        assert subscribes[1].to.tag is None
        assert subscribes[1].call_id != subscribes[0].call_id
        assert not ended(alice)
        # Bob sees a new subscription, accepts it: Alice is active again on the same ref.
        again = received(bob)
        bob.dialog.accept_subscription(again.ref, body=DOC, content_type=CTYPE, now=net.now)
        net.pump()
        assert notified(alice)[-1].state == "active"
        assert notified(alice)[-1].ref == ref
    else:
        assert len(subscribes) == 1
        assert [(e.ref, e.reason) for e in ended(alice)] == [(ref, reason)]
        assert len(alice.dialog) == 0


def test_giveup_with_retry_after_resubscribes_later() -> None:
    net, alice, bob = pair()
    _ref, served = subscribed(net, alice, bob)
    bob.dialog.terminate_subscription(served, "giveup", retry_after=30, now=net.now)
    net.pump()
    assert states(net)[-1] == "terminated;reason=giveup;retry-after=30"
    assert subscribe_calls(net) == 1
    net.advance(29)
    assert subscribe_calls(net) == 1
    net.advance(2)
    assert subscribe_calls(net) == 2


def test_resubscribe_loop_is_bounded() -> None:
    """A notifier that deactivates every new subscription at once cannot loop us for ever."""
    net, alice, bob = pair()
    ref = alice.dialog.subscribe(BOB, from_="sip:alice@127.0.0.1", event="dialog", now=net.now)
    for _ in range(10):
        net.pump()
        pending = [e for e in bob.of_type(SubscribeReceived) if isinstance(e, SubscribeReceived)]
        served = pending[-1].ref
        if bob.dialog.subscription(served) is None or ended(alice):
            break
        bob.dialog.accept_subscription(served, body=DOC, content_type=CTYPE, now=net.now)
        net.pump()
        bob.dialog.terminate_subscription(served, "deactivated", now=net.now)
        net.pump()
    limit = alice.dialog.config.resubscribe_limit
    assert subscribe_calls(net) == limit + 1
    assert [(e.ref, e.reason) for e in ended(alice)] == [(ref, "deactivated")]


def test_rejected_subscribe_ends_with_status() -> None:
    net, alice, bob = pair()
    ref = alice.dialog.subscribe(BOB, from_="sip:alice@127.0.0.1", event="dialog", now=net.now)
    net.pump()
    bob.dialog.reject_subscription(received(bob).ref, 403, headers=[("Retry-After", "90")])
    net.pump()
    assert [(e.ref, e.reason, e.status, e.retry_after) for e in ended(alice)] == [
        (ref, "rejected", 403, 90)
    ]
    assert len(alice.dialog) == 0
    assert len(bob.dialog) == 0


def test_unknown_package_is_489_with_allow_events() -> None:
    net, alice, _bob = pair()
    ref = alice.dialog.subscribe(BOB, from_="sip:alice@127.0.0.1", event="presence", now=net.now)
    net.pump()
    (answer,) = [m for m in net.messages(status=489) if isinstance(m, Response)]
    assert answer.headers.get("Allow-Events") == "dialog, message-summary"
    assert [(e.ref, e.status) for e in ended(alice)] == [(ref, 489)]


def test_no_event_packages_means_405() -> None:
    net, alice, bob = pair(configure_bob=lambda c: c)
    alice.dialog.subscribe(BOB, from_="sip:alice@127.0.0.1", event="dialog", now=net.now)
    net.pump()
    assert statuses(net, "SUBSCRIBE") == [405]
    assert "SUBSCRIBE" not in bob.dialog.config.all_methods
    assert "SUBSCRIBE" in _serving(bob.dialog.config).all_methods


def test_too_brief_is_423_and_the_subscriber_asks_again_with_min_expires() -> None:
    net, alice, bob = pair()
    alice.dialog.subscribe(
        BOB, from_="sip:alice@127.0.0.1", event="dialog", expires=10, now=net.now
    )
    net.pump()
    assert statuses(net, "SUBSCRIBE") == [423]
    sub = received(bob)
    assert sub.expires == bob.dialog.config.min_subscription_expires == 60
    bob.dialog.accept_subscription(sub.ref, expires=3600, now=net.now)
    net.pump()
    # Granted never more than asked for (RFC 6665 §4.2.1.1).
    (accepted,) = alice.of_type(SubscriptionAccepted)
    assert isinstance(accepted, SubscriptionAccepted)
    assert accepted.expires == 60


def test_pending_then_active_and_fetch() -> None:
    net, alice, bob = pair()
    alice.dialog.subscribe(BOB, from_="sip:alice@127.0.0.1", event="dialog", now=net.now)
    net.pump()
    served = received(bob).ref
    bob.dialog.accept_subscription(served, pending=True, now=net.now)
    net.pump()
    assert statuses(net, "SUBSCRIBE") == [202]
    assert notified(alice)[-1].state == "pending"
    bob.dialog.notify_subscriber(served, DOC, CTYPE, pending=False, now=net.now)
    net.pump()
    assert notified(alice)[-1].state == "active"
    # A fetch (Expires 0): one NOTIFY with the state, terminated at once.
    ref = alice.dialog.subscribe(
        BOB, from_="sip:alice@127.0.0.1", event="message-summary", expires=0, now=net.now
    )
    net.pump()
    bob.dialog.accept_subscription(received(bob).ref, body=b"Messages-Waiting: no\r\n")
    net.pump()
    last = notified(alice)[-1]
    assert (last.ref, last.state, last.reason) == (ref, "terminated", "timeout")
    assert [e.ref for e in ended(alice)] == [ref]


def test_max_subscriptions_bound() -> None:
    net, alice, bob = pair(configure_bob=lambda c: attrs.evolve(_serving(c), max_subscriptions=2))
    for _ in range(3):
        alice.dialog.subscribe(BOB, from_="sip:alice@127.0.0.1", event="dialog", now=net.now)
    net.pump()
    assert sorted(statuses(net, "SUBSCRIBE")) == [503]
    assert len(bob.of_type(SubscribeReceived)) == 2
    small = attrs.evolve(alice.dialog.config, max_subscriptions=2)
    alice.dialog.config = small
    with pytest.raises(DialogUsageError):
        alice.dialog.subscribe(BOB, from_="sip:alice@127.0.0.1", event="dialog", now=net.now)


def test_unanswered_subscribe_is_given_up() -> None:
    net, alice, bob = pair()
    alice.dialog.subscribe(BOB, from_="sip:alice@127.0.0.1", event="dialog", now=net.now)
    net.advance(64)
    assert bob.dialog.pending()["served_subscriptions"] == 0
    assert ended(alice)


def test_notify_refused_removes_the_served_subscription() -> None:
    """RFC 6665 §4.2.2: a NOTIFY answered 481 ends the subscription on the notifier."""
    net, alice, bob = pair()
    _ref, served = subscribed(net, alice, bob)
    # Alice forgets everything (a reboot): her layer is replaced.
    net.agents[("127.0.0.1", 5060)] = net.add("alice", 5060, seed=9)
    bob.dialog.notify_subscriber(served, b"<x/>", CTYPE, now=net.now)
    net.pump()
    assert statuses(net, "NOTIFY")[-1] == 481
    assert [e.reason for e in served_ended(bob)] == ["notify-failed"]
    assert bob.dialog.pending()["served_subscriptions"] == 0
    assert len(bob.dialog) == 0


def test_refer_notify_still_reaches_refer_handling() -> None:
    """The subscription usages leave REFER's implicit subscription (RFC 3515) alone."""
    from rvoip_dialog_core import DialogConfirmed, IncomingInvite, NotifyReceived, ReferReceived

    net, alice, bob = pair()
    alice.dialog.invite(BOB, from_="sip:alice@127.0.0.1", now=net.now)
    net.pump()
    (inv,) = bob.of_type(IncomingInvite)
    assert isinstance(inv, IncomingInvite)
    bob.dialog.respond(inv.ref, 200, body=b"v=0\r\n", content_type="application/sdp")
    net.pump()
    (confirmed,) = alice.of_type(DialogConfirmed)
    assert isinstance(confirmed, DialogConfirmed)
    alice.dialog.refer(confirmed.dialog_id, "sip:carol@127.0.0.1", now=net.now)
    net.pump()
    (refer,) = bob.of_type(ReferReceived)
    assert isinstance(refer, ReferReceived)
    bob.dialog.accept_refer(refer.ref, now=net.now)
    net.pump()
    assert [e.event for e in alice.of_type(NotifyReceived) if isinstance(e, NotifyReceived)] == [
        "refer"
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["active", "pending", "terminated", "Active", "TERMINATED"]),
    st.none() | st.integers(min_value=0, max_value=10**9),
    st.none() | st.sampled_from(["timeout", "deactivated", "noresource", "Giveup"]),
    st.none() | st.integers(min_value=0, max_value=10**9),
)
def test_subscription_state_round_trip(
    state: str, expires: int | None, reason: str | None, retry: int | None
) -> None:
    """The Subscription-State values the layer writes parse back to what was meant."""
    text = state
    if expires is not None:
        text += f";expires={expires}"
    if reason is not None:
        text += f";reason={reason}"
    if retry is not None:
        text += f";retry-after={retry}"
    parsed = SubscriptionState.parse(text)
    assert parsed.state == state.lower()
    assert parsed.expires == expires
    assert parsed.reason == (None if reason is None else reason.lower())
    assert parsed.retry_after == retry
    assert SubscriptionState.parse(str(parsed)) == parsed


def test_refresh_notify_left_to_the_tu() -> None:
    """With notify_on_refresh=False the TU is told of each refresh and sends the NOTIFY
    itself (a dialog-info notifier must bump its version on every NOTIFY, RFC 4235)."""
    net, alice, bob = pair()
    alice.dialog.subscribe(
        BOB, from_="sip:alice@127.0.0.1", event="dialog", expires=120, now=net.now
    )
    net.pump()
    served = received(bob).ref
    bob.dialog.accept_subscription(
        served, body=DOC, content_type=CTYPE, notify_on_refresh=False, now=net.now
    )
    net.pump()
    net.advance(61)  # Alice refreshes at half of 120 s
    refreshed = [e for e in bob.events if isinstance(e, ServedSubscriptionRefreshed)]
    assert [(e.ref, e.expires) for e in refreshed] == [(served, 120)]
    assert len(notified(alice)) == 1  # the layer sent no NOTIFY of its own
    bob.dialog.notify_subscriber(served, b"<version-1/>", CTYPE, now=net.now)
    net.pump()
    assert notified(alice)[-1].body == b"<version-1/>"


def test_dialog_creating_2xx_copies_record_route_and_names_the_transport() -> None:
    """RFC 3261 §12.1.1: the 2xx that makes the subscription's dialog copies Record-Route;
    its Contact is the one of the transport the SUBSCRIBE came over."""
    layer = DialogLayer(
        DialogConfig(
            contact="sip:bob@127.0.0.1:5070",
            via_host="127.0.0.1",
            via_port=5070,
            contacts=(("TCP", "sip:bob@127.0.0.1:5070;transport=tcp"),),
            event_packages=("dialog",),
        ),
        rng=random.Random(3),
    )
    request = make_request(
        "SUBSCRIBE",
        parse_uri("sip:bob@127.0.0.1:5070"),
        from_="<sip:alice@127.0.0.1>;tag=a1",
        to="<sip:bob@127.0.0.1>",
        call_id="rr-1",
        cseq=1,
        via="SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKrr1",
        contact="<sip:alice@127.0.0.1:5060;transport=tcp>",
        headers=[
            ("Record-Route", "<sip:proxy.example.com;lr>"),
            ("Event", "dialog"),
            ("Expires", "600"),
        ],
    )
    layer.on_request(request, "srv", 0.0)
    (event,) = layer.take_events()
    assert isinstance(event, SubscribeReceived)
    layer.take_actions()
    layer.accept_subscription(event.ref, body=DOC, content_type=CTYPE, now=0.0)
    actions = layer.take_actions()
    (answer,) = [a.response for a in actions if isinstance(a, SendResponse)]
    assert answer.status == 200
    assert answer.headers.get("Record-Route") == "<sip:proxy.example.com;lr>"
    assert answer.headers.get("Contact") == "<sip:bob@127.0.0.1:5070;transport=tcp>"
    (notify,) = [a.request for a in actions if isinstance(a, SendRequest)]
    # The NOTIFY follows the route set: the proxy first (a loose route).
    assert notify.headers.get("Route") == "<sip:proxy.example.com;lr>"
    assert notify.headers.get("Subscription-State") == "active;expires=600"


@settings(max_examples=100, deadline=None)
@given(
    st.from_regex(r"[a-z][a-z0-9.\-]{0,15}", fullmatch=True),
    st.none() | st.from_regex(r"[A-Za-z0-9]{1,12}", fullmatch=True),
)
def test_event_header_round_trip_and_matching(package: str, event_id: str | None) -> None:
    """The Event values the layer writes parse back to the package and id it matches on."""
    text = package if event_id is None else f"{package};id={event_id}"
    parsed = Event.parse(text)
    assert parsed.package == package
    assert parsed.id == event_id
    assert Event.parse(str(parsed)) == parsed


def test_challenged_subscribe_is_retried_with_credentials() -> None:
    """A 401 to our SUBSCRIBE is answered with credentials by the client (RFC 3261 §22);
    the subscription waits for the retried request's answer instead of ending."""
    config = DialogConfig(
        contact="sip:alice@127.0.0.1:5060",
        via_host="127.0.0.1",
        via_port=5060,
        credentials=(Credentials("alice", "s3cret", "example.com"),),
    )
    layer = DialogLayer(config, rng=random.Random(5))
    ref = layer.subscribe(BOB, from_="sip:alice@127.0.0.1", event="dialog", now=0.0)
    (first,) = [a.request for a in layer.take_actions() if isinstance(a, SendRequest)]
    server = DigestServer("example.com", rng=random.Random(1))
    challenge = [("WWW-Authenticate", str(c)) for c in server.challenge(0.0)]
    layer.on_response(make_response(first, 401, to_tag="srv", headers=challenge), 0.1)
    (retried,) = [a.request for a in layer.take_actions() if isinstance(a, SendRequest)]
    assert retried.headers.get("Authorization") is not None
    assert retried.cseq.seq == first.cseq.seq + 1
    assert layer.take_events() == []  # not ended: the retry is under way
    ok = make_response(retried, 200, to_tag="srv", headers=[("Expires", "600")])
    ok = ok.with_header("Contact", "<sip:bob@127.0.0.1:5070>")
    layer.on_response(ok, 0.2)
    (accepted,) = layer.take_events()
    assert isinstance(accepted, SubscriptionAccepted)
    assert (accepted.ref, accepted.expires) == (ref, 600)
    assert layer.dialog(accepted.dialog_id) is not None


_header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=0, max_size=40
)


@settings(max_examples=150, deadline=None)
@given(
    event=_header_text,
    state=_header_text,
    expires=_header_text,
    method=st.sampled_from(["NOTIFY", "SUBSCRIBE"]),
    in_dialog=st.booleans(),
)
def test_hostile_subscribe_and_notify_headers_never_break_the_layer(
    event: str, state: str, expires: str, method: str, in_dialog: bool
) -> None:
    """Whatever Event, Subscription-State and Expires a peer sends, in or out of a live
    subscription dialog, the layer answers with a final status and nothing escapes."""
    net, alice, bob = pair()
    ref, _served = subscribed(net, alice, bob)
    sub = alice.dialog.subscription(ref)
    assert sub is not None
    assert sub.dialog_id is not None
    did = sub.dialog_id
    headers = [("Event", event), ("Subscription-State", state), ("Expires", expires)]
    headers = [(n, v) for n, v in headers if v.strip()]
    to_tag = f";tag={did.local_tag}" if in_dialog else ""
    request = make_request(
        method,
        parse_uri("sip:alice@127.0.0.1:5060"),
        from_=f"<sip:bob@127.0.0.1:5070>;tag={did.remote_tag}",
        to=f"<sip:alice@127.0.0.1>{to_tag}",
        call_id=did.call_id,
        cseq=10**6,
        via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKhostile",
        contact="<sip:bob@127.0.0.1:5070>",
        headers=headers,
    )
    layer = alice.dialog
    layer.take_actions()
    layer.on_request(request, "hostile", net.now)
    answers = [a.response.status for a in layer.take_actions() if isinstance(a, SendResponse)]
    assert len(answers) == 1
    assert answers[0] >= 200
    assert layer.stats["request_errors"] == 0


def test_notify_for_another_event_in_a_subscription_dialog() -> None:
    """In a dialog that only carries our subscriptions, a NOTIFY of an event we did not
    subscribe to is 481 (RFC 6665 §4.1.3) and one without a usable Event 489 (§8.2.1);
    neither reaches REFER's handling."""
    net, alice, bob = pair()
    ref, _served = subscribed(net, alice, bob)
    sub = alice.dialog.subscription(ref)
    assert sub is not None
    assert sub.dialog_id is not None
    did = sub.dialog_id
    statuses_seen = []
    for seq, event in ((10, "presence"), (11, "bad event;;")):
        request = make_request(
            "NOTIFY",
            parse_uri("sip:alice@127.0.0.1:5060"),
            from_=f"<sip:bob@127.0.0.1:5070>;tag={did.remote_tag}",
            to=f"<sip:alice@127.0.0.1>;tag={did.local_tag}",
            call_id=did.call_id,
            cseq=10**6 + seq,
            via=f"SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKother{seq}",
            headers=[("Event", event), ("Subscription-State", "active;expires=60")],
        )
        alice.dialog.take_actions()
        alice.dialog.on_request(request, f"s{seq}", net.now)
        (answer,) = [a for a in alice.dialog.take_actions() if isinstance(a, SendResponse)]
        statuses_seen.append(answer.response.status)
    assert statuses_seen == [481, 489]
    assert not [e for e in alice.dialog.take_events() if type(e).__name__ == "NotifyReceived"]


def test_no_notify_after_the_2xx_ends_the_subscription() -> None:
    """RFC 6665 §4.1.2.4: a 2xx with no NOTIFY within 64*T1 means the subscription failed
    (every NOTIFY of the notifier is lost here)."""

    def drop(record: WireRecord) -> bool:
        msg = record.message
        return isinstance(msg, Request) and msg.method == "NOTIFY"

    net, alice, bob = pair(drop)
    ref = alice.dialog.subscribe(BOB, from_="sip:alice@127.0.0.1", event="dialog", now=net.now)
    net.pump()
    bob.dialog.accept_subscription(received(bob).ref, body=DOC, content_type=CTYPE)
    net.pump()
    assert alice.of_type(SubscriptionAccepted)
    net.advance(31)
    assert not ended(alice)
    net.advance(2)
    assert [(e.ref, e.reason) for e in ended(alice)] == [(ref, "timeout")]
    assert len(alice.dialog) == 0


def test_final_notify_without_document_when_the_tu_versions_them() -> None:
    """With notify_on_refresh=False the unsubscribe's final NOTIFY carries only the state:
    re-sending the last document would repeat its version (RFC 4235 §4.1)."""
    net, alice, bob = pair()
    ref = alice.dialog.subscribe(BOB, from_="sip:alice@127.0.0.1", event="dialog", now=net.now)
    net.pump()
    bob.dialog.accept_subscription(
        received(bob).ref, body=DOC, content_type=CTYPE, notify_on_refresh=False, now=net.now
    )
    net.pump()
    alice.dialog.unsubscribe(ref, now=net.now)
    net.pump()
    last = notified(alice)[-1]
    assert (last.state, last.body, last.content_type) == ("terminated", b"", None)


def test_nothing_leaks_after_many_subscriptions() -> None:
    """50 subscribe / notify / unsubscribe cycles (and 10 expiring ones) leave every
    table and the timeline of both layers empty."""
    net, alice, bob = pair()
    for n in range(60):
        ref = alice.dialog.subscribe(
            BOB, from_="sip:alice@127.0.0.1", event="dialog", expires=60, now=net.now
        )
        net.pump()
        served = received(bob).ref
        bob.dialog.accept_subscription(served, body=DOC, content_type=CTYPE, now=net.now)
        net.pump()
        bob.dialog.notify_subscriber(served, b"<x/>", CTYPE, now=net.now)
        net.pump()
        if n < 50:
            alice.dialog.unsubscribe(ref, now=net.now)
            net.pump()
    # The last 10: the subscriber stops refreshing (gone), the notifier times them out.
    net.agents.pop(("127.0.0.1", 5060))
    net.advance(200)
    assert len(served_ended(bob)) == 60
    assert sum(bob.dialog.pending().values()) == 0, bob.dialog.pending()
    assert alice.dialog.pending()["subscriptions"] == 10  # Alice was off the network
    # Back on it (her clock ran on): expired, or refreshed into a 481, hers end too.
    net.agents[("127.0.0.1", 5060)] = alice
    net.advance(200)
    assert {e.reason for e in ended(alice)[-10:]} <= {"timeout", "dialog-ended"}
    assert len(ended(alice)) == 60
    assert sum(alice.dialog.pending().values()) == 0, alice.dialog.pending()
    assert len(alice.dialog) == 0
