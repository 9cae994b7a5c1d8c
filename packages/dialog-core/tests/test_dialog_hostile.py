"""Issue 10 in the dialog layer: CSPRNG identifiers, validation before acting, no escaping
exception, and our own session timer as UAS (RFC 4028 §9) against a peer that runs none."""

from __future__ import annotations

import random

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rvoip_dialog_core import (
    ByeReceived,
    DialogConfig,
    DialogConfirmed,
    DialogEndpoint,
    DialogLayer,
    DialogTerminated,
    IncomingInvite,
    SendResponse,
    TerminationReason,
)
from rvoip_dialog_core.testing import Agent, VirtualNetwork, WireRecord
from rvoip_sip_core import Request, Response, SipParseError, parse_message

CONFIG = DialogConfig(contact="sip:bob@127.0.0.1:5070", via_host="127.0.0.1", via_port=5070)
BOB = "sip:bob@127.0.0.1:5070"


def wire_request(
    method: str = "INVITE",
    *,
    contact: str = "Contact: <sip:alice@127.0.0.1:5060>\r\n",
    cseq: str | None = None,
    to_tag: str = "",
    branch: str = "z9hG4bKh1",
    extra: str = "",
) -> Request:
    data = (
        f"{method} sip:bob@127.0.0.1:5070 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n"
        "From: <sip:alice@127.0.0.1>;tag=a1\r\n"
        f"To: <sip:bob@127.0.0.1>{to_tag}\r\n"
        "Call-ID: hostile-1\r\n"
        f"CSeq: {cseq or '1 ' + method}\r\n"
        "Max-Forwards: 70\r\n"
        f"{contact}{extra}Content-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def responses(layer: DialogLayer) -> list[Response]:
    return [a.response for a in layer.take_actions() if isinstance(a, SendResponse)]


# --- identifiers from the OS CSPRNG -------------------------------------------------------


def test_layer_draws_tags_and_call_ids_from_the_os_csprng(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bug (issue 10): tags, branches, Call-IDs and CSeq starts came from a Mersenne Twister
    the caller had to pass in; a few hundred of them let anyone recover its state. Now a
    layer built without an rng draws from ``random.SystemRandom`` (os.urandom): with the OS
    source stubbed to a constant, two layers make the same identifiers."""
    monkeypatch.setattr(random, "_urandom", lambda n: b"\x42" * n)
    legs = [DialogLayer(CONFIG).invite(BOB, from_="sip:alice@127.0.0.1", now=0.0) for _ in range(2)]
    assert legs[0] == legs[1]
    assert legs[0].local_tag == "4242424242424242"


def test_seeded_rng_is_used_when_injected(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests keep their determinism: an injected seeded generator is used as given."""
    monkeypatch.setattr(random, "_urandom", lambda n: b"\x42" * n)
    one = DialogLayer(CONFIG, rng=random.Random(7)).invite(BOB, from_="sip:a@h", now=0.0)
    two = DialogLayer(CONFIG, rng=random.Random(7)).invite(BOB, from_="sip:a@h", now=0.0)
    assert one == two
    assert one.local_tag != "4242424242424242"


@pytest.mark.anyio
async def test_endpoint_defaults_to_the_os_csprng(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug (issue 10): DialogEndpoint defaulted to ``random.Random()`` (a Mersenne Twister
    seeded once); now both layers under it draw from the OS CSPRNG by default."""
    monkeypatch.setattr(random, "_urandom", lambda n: b"\x42" * n)
    async with DialogEndpoint(udp=("127.0.0.1", 0)) as ep:
        one = ep.invite("sip:nobody@127.0.0.1:9", from_="sip:a@127.0.0.1", call_id="c1")
        two = ep.invite("sip:nobody@127.0.0.1:9", from_="sip:a@127.0.0.1", call_id="c2")
    assert one.local_tag == two.local_tag == "4242424242424242"


# --- validation before acting -------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (wire_request(contact=""), "Missing Contact"),
        (wire_request(contact="Contact: *\r\n"), "Contact '*' is only allowed in REGISTER"),
        (
            wire_request(contact="Contact: <sip:a@10.0.0.1>, <sip:b@10.0.0.2>\r\n"),
            "Contact must hold exactly one URI",
        ),
        (wire_request(contact="Contact: <mailto:a@x>\r\n"), "Contact must be a SIP or SIPS URI"),
        (wire_request(cseq="1 BYE"), "CSeq method does not match the request method"),
        (
            wire_request("UPDATE", to_tag=";tag=b1", contact="Contact: *\r\n"),
            "Contact '*' is only allowed in REGISTER",
        ),
    ],
)
def test_invalid_dialog_requests_get_400_naming_the_fault(request_: Request, reason: str) -> None:
    """Bug (issue 10): an INVITE without Contact, with ``*``, two Contacts or a mailto:
    Contact, or whose CSeq method differs from its method, was accepted (200 OK, with a
    remote target we cannot use). RFC 3261 §8.1.1.8 / §8.1.1.5: answer 400 saying why."""
    layer = DialogLayer(CONFIG, rng=random.Random(1))
    layer.on_request(request_, 1, 0.0)
    (response,) = responses(layer)
    assert (response.status, response.reason) == (400, reason)
    assert layer.take_events() == []
    assert layer.stats["request_malformed"] == 1


def test_in_dialog_refresh_without_contact_keeps_the_target() -> None:
    """An UPDATE may omit Contact (the remote target stays); only a new dialog needs one."""
    layer = DialogLayer(CONFIG, rng=random.Random(1))
    layer.on_request(wire_request(), "inv", 0.0)
    (incoming,) = layer.take_events()
    assert isinstance(incoming, IncomingInvite)
    layer.respond(incoming.ref, 200, now=0.0)
    layer.on_ack(wire_request("ACK", to_tag=f";tag={incoming.dialog_id.local_tag}"), 0.0)
    layer.take_actions()
    update = wire_request(
        "UPDATE", contact="", cseq="2 UPDATE", to_tag=f";tag={incoming.dialog_id.local_tag}"
    )
    layer.on_request(update, "upd", 1.0)
    assert [r.status for r in responses(layer)] == [200]


# --- no exception escapes -----------------------------------------------------------------


def test_a_failing_request_is_answered_500_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug (issue 10): an exception raised while handling a request (a bug, or a message no
    check foresaw) escaped ``on_request`` into the transport's receive path. Now it is
    caught per message, counted, and the request answered 500."""
    layer = DialogLayer(CONFIG, rng=random.Random(1))

    def boom(*args: object, **kwargs: object) -> None:
        raise ValueError("unforeseen")

    monkeypatch.setattr("rvoip_dialog_core._dialog.Dialog.accept_remote_cseq", boom)
    layer.on_request(wire_request(), "inv", 0.0)
    (incoming,) = layer.take_events()
    assert isinstance(incoming, IncomingInvite)
    layer.respond(incoming.ref, 200, now=0.0)
    layer.take_actions()
    bye = wire_request("BYE", cseq="2 BYE", to_tag=f";tag={incoming.dialog_id.local_tag}")
    layer.on_request(bye, "bye", 1.0)  # must not raise
    assert [(r.status, r.reason) for r in responses(layer)] == [(500, "Server Internal Error")]
    assert layer.stats["request_errors"] == 1


def test_a_failing_response_or_ack_is_counted_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """Responses and ACKs that provoke an exception are counted, never raised."""
    layer = DialogLayer(CONFIG, rng=random.Random(1))

    def boom(*args: object, **kwargs: object) -> None:
        raise ValueError("unforeseen")

    monkeypatch.setattr("rvoip_dialog_core._layer.malformed", boom)
    monkeypatch.setattr("rvoip_dialog_core._uas.malformed", boom)
    layer.on_response(parse_response_200(), 0.0)
    layer.on_ack(wire_request("ACK", to_tag=";tag=x"), 0.0)
    assert (layer.stats["response_errors"], layer.stats["ack_errors"]) == (1, 1)


def parse_response_200() -> Response:
    data = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKx\r\n"
        b"From: <sip:bob@127.0.0.1>;tag=b\r\nTo: <sip:alice@127.0.0.1>;tag=a\r\n"
        b"Call-ID: r1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    message = parse_message(data)
    assert isinstance(message, Response)
    return message


_HEADER_LINES = [
    "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp1",
    "From: <sip:alice@127.0.0.1>;tag=a1",
    "To: <sip:bob@127.0.0.1>",
    "Call-ID: prop-1",
    "CSeq: 1 INVITE",
    "Contact: <sip:alice@127.0.0.1:5060>",
    "Record-Route: <sip:p@10.0.0.1;lr>",
    "Supported: 100rel, timer",
    "Session-Expires: 120;refresher=uac",
    "Min-SE: 90",
    "Require: 100rel",
    "Replaces: x;to-tag=a;from-tag=b",
    "Refer-To: <sip:carol@h>",
    "Event: refer",
    "RAck: 1 1 INVITE",
    "Content-Type: application/sdp",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["INVITE", "BYE", "UPDATE", "PRACK", "NOTIFY", "REFER", "INFO"]),
    lines=st.lists(st.sampled_from(_HEADER_LINES), min_size=3, max_size=12),
    garbage=st.text(alphabet="<>;,=:@\"' *0123456789abc\\", max_size=12),
    where=st.integers(min_value=0, max_value=11),
    tagged=st.booleans(),
)
def test_mutated_requests_never_escape_the_layer(
    method: str, lines: list[str], garbage: str, where: int, tagged: bool
) -> None:
    """Property (issue 10): whatever a request's headers hold, the layer answers or drops
    it; no exception leaves ``on_request``, before or after the dialog exists."""
    layer = DialogLayer(CONFIG, rng=random.Random(1))
    layer.on_request(wire_request(), "inv", 0.0)
    (incoming,) = layer.take_events()
    assert isinstance(incoming, IncomingInvite)
    layer.respond(incoming.ref, 200, now=0.0)
    lines = list(lines)
    lines[where % len(lines)] += garbage
    if tagged:
        lines.append(f"To: <sip:bob@127.0.0.1>;tag={incoming.dialog_id.local_tag}")
    data = f"{method} sip:bob@127.0.0.1:5070 SIP/2.0\r\n" + "\r\n".join(lines) + "\r\n\r\n"
    try:
        message = parse_message(data.encode())
    except SipParseError:
        return
    if not isinstance(message, Request):
        return
    layer.on_request(message, "mut", 1.0)
    layer.on_ack(message, 1.0)
    layer.handle_timers(100.0)
    assert layer.stats["request_errors"] == 0
    assert layer.stats["timer_errors"] == 0


# --- our own session timer as UAS (RFC 4028 §9) ---------------------------------------------

NO_TIMER = {"supported": ("100rel", "replaces"), "session_expires": None}
"""A peer that knows nothing of session timers (no ``timer``, asks for no interval)."""


def timer_pair(
    *, bob: dict[str, object] | None = None, drop: object = None
) -> tuple[VirtualNetwork, Agent, Agent]:
    net = VirtualNetwork(drop=drop)  # type: ignore[arg-type]
    alice = net.add("alice", 5060, seed=1, configure=lambda c: attrs.evolve(c, **NO_TIMER))  # type: ignore[arg-type]
    bob_agent = net.add(
        "bob",
        5070,
        seed=2,
        configure=lambda c: attrs.evolve(c, **(bob or {})),  # type: ignore[arg-type]
    )
    alice.dialog.invite(BOB, from_="sip:alice@127.0.0.1", body=b"v=0\r\n", now=net.now)
    net.pump()
    (inv,) = bob_agent.of_type(IncomingInvite)
    assert isinstance(inv, IncomingInvite)
    bob_agent.dialog.respond(inv.ref, 200, body=b"v=0\r\n", now=net.now)
    net.pump()
    return net, alice, bob_agent


def test_uas_runs_its_own_timer_when_the_peer_asks_for_none() -> None:
    """Bug (issue 10): a UAS answered an INVITE without Session-Expires with no timer at
    all, so a vanished peer held the call for ever. RFC 4028 §9: the UAS may add
    Session-Expires with refresher=uas (no Require: the UAC did not say it supports it)."""
    net, _alice, bob = timer_pair()
    invite = net.messages(method="INVITE")[0]
    assert "Session-Expires" not in invite.headers
    ok = [m for m in net.messages(status=200) if isinstance(m, Response)][-1]
    assert ok.headers.get("Session-Expires") == "1800;refresher=uas"
    assert "Require" not in ok.headers
    (confirmed,) = bob.of_type(DialogConfirmed)
    assert isinstance(confirmed, DialogConfirmed)
    timer = bob.dialog.session_timer(confirmed.dialog_id)
    assert timer is not None
    assert (timer.interval, timer.we_refresh, timer.own) == (1800, True, True)


def test_own_timer_refreshes_keep_a_live_call_up() -> None:
    """With a live peer our UPDATE refreshes (every interval/2) keep the dialog up."""
    net, alice, bob = timer_pair()
    start = net.now
    net.advance(5000.0)
    updates = net.messages(method="UPDATE")
    assert len(updates) >= 5
    assert all(isinstance(u, Request) and u.body == b"" for u in updates)
    assert net.messages(method="BYE") == []
    assert (len(alice.dialog), len(bob.dialog)) == (1, 1)
    assert net.now - start >= 5000.0


def test_own_timer_ends_the_call_with_bye_when_the_peer_stops_answering() -> None:
    """A peer that vanishes: our refresh at interval/2 gets no answer (Timer F, 32 s), so we
    end the dialog with a BYE and a Reason (RFC 4028 §10, RFC 3326), around the interval."""
    cut = {"on": False}

    def drop(record: WireRecord) -> bool:
        return cut["on"] and record.source.port == 5060

    net, _alice, bob = timer_pair(drop=drop)
    t0 = net.now
    cut["on"] = True
    net.advance(2000.0)
    byes = [r for r in net.wire if isinstance(r.message, Request) and r.message.method == "BYE"]
    assert byes
    assert byes[0].source == bob.address
    assert 900.0 <= byes[0].at - t0 <= 1800.0
    bye = byes[0].message
    assert isinstance(bye, Request)
    assert bye.headers.get("Reason") == 'SIP;cause=408;text="Session refresh failed"'
    ends = [e for e in bob.events if isinstance(e, DialogTerminated)]
    assert [e.reason for e in ends] == [TerminationReason.SESSION_EXPIRED]
    assert len(bob.dialog) == 0
    assert bob.dialog.stats["session_refresh_failed"] == 1


def test_own_timer_respects_the_peer_min_se() -> None:
    """RFC 4028 §9: the interval we add is never below the request's Min-SE."""
    net = VirtualNetwork()
    net.add("alice", 5060, seed=1)
    bob = net.add("bob", 5070, seed=2, configure=lambda c: attrs.evolve(c, uas_session_expires=600))
    invite = wire_request(extra="Min-SE: 900\r\n")
    bob.dialog.on_request(invite, 1, 0.0)
    (incoming,) = bob.dialog.take_events()
    assert isinstance(incoming, IncomingInvite)
    ok = bob.dialog.respond(incoming.ref, 200, now=0.0)
    assert ok.headers.get("Session-Expires") == "900;refresher=uas"


def test_own_timer_off_when_not_configured() -> None:
    """``uas_session_expires=None`` restores the old behaviour: no timer of our own."""
    net, _alice, bob = timer_pair(bob={"uas_session_expires": None})
    ok = [m for m in net.messages(status=200) if isinstance(m, Response)][-1]
    assert "Session-Expires" not in ok.headers
    (confirmed,) = bob.of_type(DialogConfirmed)
    assert isinstance(confirmed, DialogConfirmed)
    assert bob.dialog.session_timer(confirmed.dialog_id) is None


def test_peer_bye_stops_the_own_timer() -> None:
    """A call the peer hangs up leaves no timer (nor deadline) behind."""
    net, alice, bob = timer_pair()
    (confirmed,) = alice.of_type(DialogConfirmed)
    assert isinstance(confirmed, DialogConfirmed)
    alice.dialog.bye(confirmed.dialog_id, now=net.now)
    net.pump()
    assert bob.of_type(ByeReceived)
    net.advance(100.0)
    assert bob.dialog.pending()["session_timers"] == 0
    assert bob.dialog.next_deadline() is None


# --- through the driver on a real UDP socket ------------------------------------------------

_VALID_INVITE = (
    b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{n}\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:mallory@127.0.0.1>;tag=m{n}\r\n"
    b"To: <sip:bob@127.0.0.1>\r\n"
    b"Call-ID: mut-{n}\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:mallory@127.0.0.1:{port}>\r\n"
    b"Supported: 100rel, timer\r\n"
    b"Session-Expires: 120\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n\r\nv=0\n"
)


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """One hostile variant of a valid request: lines dropped, doubled, swapped or garbled."""
    lines = data.split(b"\r\n")
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(1, len(lines))
        op = rng.randrange(5)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[i])
        elif op == 2:
            j = rng.randrange(1, len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 3:
            noise = bytes(rng.choice(b"<>;,=:@\"' *\\\x00\xff0123456789") for _ in range(5))
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)] + noise
        else:
            lines[i] = lines[i].upper()
    return b"\r\n".join(lines)


@pytest.mark.anyio
async def test_mutated_invites_over_udp_leave_the_endpoint_answering(anyio_backend: str) -> None:
    """Issue 10: mutated INVITEs sent to a running endpoint over UDP never end it nor fail
    inside the dialog layer; afterwards it still answers an OPTIONS with 200."""
    import anyio

    answered: list[int] = []

    def on_event(event: object) -> None:
        if isinstance(event, IncomingInvite):
            ep.respond(event.ref, 486)

    async with DialogEndpoint(udp=("127.0.0.1", 0), on_event=on_event) as ep:
        port = ep.local("UDP").port
        async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock:
            mine = sock.extra(anyio.abc.SocketAttribute.local_port)
            rng = random.Random(10)
            for n in range(150):
                valid = _VALID_INVITE.replace(b"{port}", str(mine).encode())
                data = _mutate(valid.replace(b"{n}", str(n).encode()), rng)
                await sock.sendto(data, "127.0.0.1", port)
            options = (
                "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{mine};branch=z9hG4bKopt\r\n"
                "Max-Forwards: 70\r\nFrom: <sip:m@127.0.0.1>;tag=o\r\nTo: <sip:bob@127.0.0.1>\r\n"
                "Call-ID: opt-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            ).encode()
            with anyio.fail_after(10):
                # Retransmitted like a UDP client would (Timer E): the answers to the
                # mutated INVITEs may overflow our socket's receive buffer meanwhile.
                while not answered:
                    await sock.sendto(options, "127.0.0.1", port)
                    with anyio.move_on_after(0.5):
                        while True:
                            packet, _ = await sock.receive()
                            if b"Call-ID: opt-1" in packet:
                                answered.append(int(packet.split(b" ", 2)[1]))
                                break
        stats = ep.layer.stats
        assert stats["request_errors"] == stats["ack_errors"] == stats["timer_errors"] == 0
        assert ep.stats["layer_errors"] == ep.stats["action_errors"] == 0
    assert answered == [200]
