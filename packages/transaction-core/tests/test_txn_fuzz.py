"""Hostile input: whatever bytes arrive, the layer never raises; drops are counted."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from rvoip_transaction_core import Peer, TransactionLayer, TransactionRequest
from rvoip_transaction_core.testing import simple_request

SRC = Peer("UDP", "127.0.0.5", 5070)
VALID = [
    simple_request("INVITE", via="SIP/2.0/UDP 127.0.0.5:5070;branch=z9hG4bKf1;rport").encode(),
    simple_request("OPTIONS", via="SIP/2.0/UDP [::1]:5070;branch=z9hG4bKf2").encode(),
    simple_request("ACK", via="SIP/2.0/UDP h;branch=z9hG4bKf1", to_tag="t").encode(),
    simple_request("CANCEL", via="SIP/2.0/UDP 127.0.0.5:5070;branch=z9hG4bKf1").encode(),
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n",
]


def fresh() -> TransactionLayer:
    layer = TransactionLayer(rng=random.Random(3))
    layer.set_local("UDP", "127.0.0.1", 5060)
    return layer


def feed(layer: TransactionLayer, data: bytes) -> None:
    layer.receive(data, SRC, 0.0)
    for event in layer.take_events():
        assert not isinstance(event, TransactionRequest) or event.request.method != "ACK"
    layer.take_transmits()
    layer.handle_timers(100.0)


@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    feed(fresh(), data)


@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 400), st.binary(min_size=0, max_size=8)), max_size=4),
)
def test_mutated_messages_never_raise(base: bytes, edits: list[tuple[int, bytes]]) -> None:
    data = bytearray(base)
    for position, chunk in edits:
        at = min(position, len(data))
        data[at : at + len(chunk)] = chunk
    layer = fresh()
    feed(layer, bytes(data))
    feed(layer, bytes(data))  # and as a retransmission


@given(st.sampled_from(VALID), st.sampled_from([b"Via", b"From", b"To", b"Call-ID", b"CSeq"]))
def test_missing_mandatory_header_is_answered_or_counted(base: bytes, name: bytes) -> None:
    lines = [line for line in base.split(b"\r\n") if not line.startswith(name + b":")]
    layer = fresh()
    layer.receive(b"\r\n".join(lines), SRC, 0.0)
    sent = layer.take_transmits()
    counted = sum(v for k, v in layer.stats.items() if k.startswith(("dropped", "answered")))
    assert sent or counted >= 1 or layer.take_events()
