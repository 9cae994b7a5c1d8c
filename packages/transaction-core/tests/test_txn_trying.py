"""The deferred 100 Trying (``TimerConfig.trying_after``, RFC 3261 §17.2.1's 200 ms rule)."""

from __future__ import annotations

import random

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_sip_core import Request, make_response, parse_message
from rvoip_transaction_core import (
    Peer,
    State,
    TimerConfig,
    TransactionEndpoint,
    TransactionEvent,
    TransactionLayer,
    TransactionRequest,
)
from rvoip_transaction_core.testing import simple_request

CLIENT = Peer("UDP", "127.0.0.5", 5070)


def invite(branch: str = "z9hG4bKtry1") -> bytes:
    via = f"SIP/2.0/UDP 127.0.0.5:5070;branch={branch}"
    return simple_request("INVITE", "127.0.0.1", 5060, via=via).encode()


def server(trying_after: float = 0.2) -> TransactionLayer:
    layer = TransactionLayer(rng=random.Random(1), config=TimerConfig(trying_after=trying_after))
    layer.set_local("UDP", "127.0.0.1", 5060)
    return layer


def start(layer: TransactionLayer, now: float = 0.0) -> tuple[int, Request]:
    """Feed an INVITE; return the new server transaction and its request."""
    layer.receive(invite(), CLIENT, now)
    events = layer.take_events()
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, TransactionRequest)
    return event.txn_id, event.request


def first_lines(layer: TransactionLayer) -> list[str]:
    return [t.data.split(b"\r\n", 1)[0].decode() for t in layer.take_transmits()]


def run_timers(layer: TransactionLayer, until: float) -> list[tuple[float, str]]:
    """Fire every deadline up to ``until``; return (time, first line) of what was sent."""
    sent: list[tuple[float, str]] = []
    for _ in range(1000):
        deadline = layer.next_deadline()
        if deadline is None or deadline > until:
            break
        layer.handle_timers(deadline)
        sent += [(deadline, line) for line in first_lines(layer)]
    return sent


def test_default_sends_the_100_at_once() -> None:
    layer = server(trying_after=0.0)
    start(layer)
    assert first_lines(layer) == ["SIP/2.0 100 Trying"]
    assert TimerConfig().trying_after == 0.0


def test_a_2xx_within_trying_after_means_no_100_ever() -> None:
    layer = server()
    txn, request = start(layer)
    assert first_lines(layer) == []
    layer.respond(txn, make_response(request, 200, to_tag="uas"), 0.15)
    assert first_lines(layer) == ["SIP/2.0 200 OK"]
    assert layer.state(txn) is State.ACCEPTED
    # Timer L (64*T1) ends it; no 100 on the way, nor on an INVITE retransmission.
    layer.receive(invite(), CLIENT, 0.3)
    sent = run_timers(layer, 100.0)
    assert all("100" not in line for _t, line in sent)
    assert layer.state(txn) is None


def test_no_response_sends_the_100_at_exactly_trying_after() -> None:
    layer = server()
    txn, request = start(layer, now=10.0)
    assert first_lines(layer) == []
    assert layer.next_deadline() == pytest.approx(10.2)
    sent = run_timers(layer, 20.0)
    assert [line for _t, line in sent] == ["SIP/2.0 100 Trying"]
    assert sent[0][0] == pytest.approx(10.2)
    # The 100 is now the provisional a retransmitted INVITE gets again (§17.2.1).
    layer.receive(invite(), CLIENT, 11.0)
    assert first_lines(layer) == ["SIP/2.0 100 Trying"]
    layer.respond(txn, make_response(request, 486, to_tag="uas"), 12.0)
    assert first_lines(layer) == ["SIP/2.0 486 Busy Here"]


def test_a_retransmitted_invite_before_any_response_gets_the_100_at_once() -> None:
    layer = server()
    txn, request = start(layer)
    layer.receive(invite(), CLIENT, 0.1)
    assert first_lines(layer) == ["SIP/2.0 100 Trying"]
    assert layer.take_events() == []  # absorbed: the TU saw the INVITE once
    # the timer is cancelled: nothing more at 0.2 s; the TU's 180 goes out afterwards
    assert run_timers(layer, 5.0) == []
    layer.respond(txn, make_response(request, 180, to_tag="uas"), 1.0)
    assert first_lines(layer) == ["SIP/2.0 180 Ringing"]


def test_a_180_before_the_timer_means_no_100_afterwards() -> None:
    layer = server()
    txn, request = start(layer)
    layer.respond(txn, make_response(request, 180, to_tag="uas"), 0.05)
    assert first_lines(layer) == ["SIP/2.0 180 Ringing"]
    assert run_timers(layer, 5.0) == []
    # a retransmission gets the 180 again, not a 100
    layer.receive(invite(), CLIENT, 1.0)
    assert first_lines(layer) == ["SIP/2.0 180 Ringing"]
    layer.respond(txn, make_response(request, 200, to_tag="uas"), 2.0)
    assert first_lines(layer) == ["SIP/2.0 200 OK"]


def test_send_trying_false_still_never_sends_a_100() -> None:
    layer = TransactionLayer(config=TimerConfig(trying_after=0.2), send_trying=False)
    start(layer)
    layer.receive(invite(), CLIENT, 0.1)
    assert first_lines(layer) == []
    assert run_timers(layer, 5.0) == []


def test_non_invite_requests_are_unaffected() -> None:
    layer = server()
    via = "SIP/2.0/UDP 127.0.0.5:5070;branch=z9hG4bKopt"
    layer.receive(simple_request("OPTIONS", via=via).encode(), CLIENT, 0.0)
    assert first_lines(layer) == []
    assert layer.next_deadline() is None


@pytest.mark.parametrize("bad", [-0.001, 0.2001, 1.0, float("nan"), float("inf")])
def test_trying_after_outside_0_to_200ms_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="trying_after") as info:
        TimerConfig(trying_after=bad)
    assert repr(bad) in str(info.value)


@given(
    delay=st.floats(min_value=0.001, max_value=0.2),
    answer=st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0)),
    retransmit=st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0)),
)
def test_exactly_one_first_response_whatever_the_timing(
    delay: float, answer: float | None, retransmit: float | None
) -> None:
    # Property: the first thing sent is the 100 iff the 100 timer or a retransmission comes
    # before the TU's 200; the 200 is always sent when the TU answers; no 100 after it.
    layer = server(delay)
    txn, request = start(layer)
    steps: list[tuple[float, str]] = [(delay, "timer")]
    if answer is not None:
        steps.append((answer, "answer"))
    if retransmit is not None:
        steps.append((retransmit, "retransmit"))
    steps.sort(key=lambda s: (s[0], s[1] != "timer"))
    sent: list[str] = []
    answered = False
    for when, what in steps:
        sent += [line for _t, line in run_timers(layer, when)]
        if what == "answer":
            layer.respond(txn, make_response(request, 200, to_tag="uas"), when)
            answered = True
        elif what == "retransmit":
            layer.receive(invite(), CLIENT, when)
        sent += first_lines(layer)
    sent += [line for _t, line in run_timers(layer, 1.0)]
    # at equal times the timer fires first; a retransmission comes after the TU's answer
    expect_100 = (
        answer is None or delay <= answer or (retransmit is not None and retransmit < answer)
    )
    tryings = [i for i, line in enumerate(sent) if line == "SIP/2.0 100 Trying"]
    if expect_100:
        assert tryings[0] == 0
    else:
        assert tryings == []
    # only a retransmission (before the answer) sends the 100 again
    assert len(tryings) <= (2 if retransmit is not None else 1)
    assert ("SIP/2.0 200 OK" in sent) == answered
    if answered:
        assert all(i < sent.index("SIP/2.0 200 OK") for i in tryings)


@pytest.mark.anyio
@pytest.mark.parametrize("answer", [True, False], ids=["answered", "silent"])
async def test_loopback_udp_through_the_endpoint(anyio_backend: str, answer: bool) -> None:
    holder: list[TransactionEndpoint] = []

    def on_event(event: TransactionEvent) -> None:
        if answer and isinstance(event, TransactionRequest):
            holder[0].respond(event.txn_id, make_response(event.request, 200, to_tag="uas"))

    config = TimerConfig(trying_after=0.2)
    async with (
        TransactionEndpoint(config=config, on_event=on_event) as ep,
        await anyio.create_connected_udp_socket(
            ep.local("UDP").host, ep.local("UDP").port, local_host="127.0.0.1"
        ) as sock,
    ):
        holder.append(ep)
        port = sock.extra(anyio.abc.SocketAttribute.local_port)
        via = f"SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKloop"
        await sock.send(simple_request("INVITE", via=via).encode())
        received: list[int] = []
        # Wait well past trying_after: the answered call gets only its 200, the silent one
        # its 100 once the timer fired.
        with anyio.move_on_after(0.6):
            while True:
                message = parse_message(await sock.receive())
                assert not isinstance(message, Request)
                received.append(message.status)
    assert received == ([200] if answer else [100])
