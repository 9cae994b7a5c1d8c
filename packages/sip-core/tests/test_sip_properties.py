"""Hypothesis properties: arbitrary bytes raise only SipParseError, round trips, framing."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from rvoip_sip_core import (
    KeepAlive,
    Message,
    SipParseError,
    StreamFramer,
    canonical_name,
    header_key,
    parse_message,
)
from rvoip_sip_core.testing import messages, valid_requests, valid_responses, wire_messages

SAMPLE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
    b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c\r\n"
    b"CSeq: 1 INVITE\r\nContact: <sip:a@h>\r\nContent-Length: 3\r\n\r\nabc"
)


def touch_everything(msg: Message) -> None:
    """Read every typed accessor; each may raise only SipParseError."""
    for attr in (
        "vias",
        "from_",
        "to",
        "cseq",
        "call_id",
        "contacts",
        "routes",
        "record_routes",
        "content_type",
        "max_forwards",
        "uri",
    ):
        if attr == "uri" and not msg.is_request:
            continue  # a Response has no Request-URI (not an accessor to test there)
        try:
            getattr(msg, attr)
        except SipParseError:
            pass


@given(st.binary(max_size=600))
@example(b"SIP/2.0 100")
def test_arbitrary_bytes_raise_only_sip_parse_error(data: bytes) -> None:
    """Whatever the bytes, parsing and every accessor raise only SipParseError.

    Test bug (found by hypothesis once in ~thousands of runs): bytes that parse as a
    Response (``SIP/2.0 100``) made the test read ``uri``, which only a Request has, and
    fail with AttributeError although the parser did nothing wrong.
    """
    for strict in (False, True):
        status = 0
        try:
            msg = parse_message(data, strict=strict)
        except SipParseError as exc:
            status = exc.status
        if status:
            assert 400 <= status <= 599
            continue
        touch_everything(msg)
        msg.encode()


@given(st.binary(max_size=80), st.integers(0, len(SAMPLE)))
def test_mutated_messages_raise_only_sip_parse_error(noise: bytes, at: int) -> None:
    data = SAMPLE[:at] + noise + SAMPLE[at:]
    try:
        msg = parse_message(data)
    except SipParseError:
        return
    touch_everything(msg)
    try:
        parse_message(msg.encode(), strict=True)
    except SipParseError:
        pass


@given(messages())
def test_generated_messages_round_trip(msg: Message) -> None:
    wire = msg.encode()
    again = parse_message(wire)
    assert again == msg
    assert again.encode() == wire


@given(valid_requests() | valid_responses())
def test_valid_messages_round_trip_strictly(msg: Message) -> None:
    again = parse_message(msg.encode(), strict=True)
    assert again == msg
    assert again.vias == msg.vias
    assert again.from_ == msg.from_
    assert again.to == msg.to
    assert again.cseq == msg.cseq
    assert again.call_id == msg.call_id
    assert again.contacts == msg.contacts
    assert again.body == msg.body


@given(st.lists(wire_messages(), max_size=4), st.data())
def test_framer_same_frames_whole_or_chunked(frames: list[bytes], data: st.DataObject) -> None:
    pieces = data.draw(st.lists(st.sampled_from([b"\r\n\r\n", b"\r\n"]), max_size=3))
    stream = b"".join(
        pieces + [frame + data.draw(st.sampled_from([b"", b"\r\n\r\n"])) for frame in frames]
    )
    whole = StreamFramer().feed(stream)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=20)))
    chunked: list[bytes | KeepAlive] = []
    framer = StreamFramer()
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        chunked += framer.feed(stream[a:b])
    assert chunked == whole
    bytewise: list[bytes | KeepAlive] = []
    framer = StreamFramer()
    for i in range(len(stream)):
        bytewise += framer.feed(stream[i : i + 1])
    assert bytewise == whole
    assert [f for f in whole if isinstance(f, bytes)] == frames


@given(st.binary(max_size=300), st.data())
def test_framer_arbitrary_bytes(stream: bytes, data: st.DataObject) -> None:
    """Whole or bytewise: the same frames, and the same failure (only SipParseError)."""

    def run(chunks: list[bytes]) -> tuple[list[bytes | KeepAlive], int | None]:
        framer = StreamFramer(max_head=200, max_body=200)
        out: list[bytes | KeepAlive] = []
        for chunk in chunks:
            try:
                out += framer.feed(chunk)
            except SipParseError as exc:
                return out, exc.status
        return out, None

    whole, whole_error = run([stream])
    split, split_error = run([stream[i : i + 1] for i in range(len(stream))])
    if whole_error is None:
        assert split == whole
        assert split_error is None
    else:
        assert split_error is not None
        assert split[: len(whole)] == whole


@given(st.text(max_size=20))
def test_names_never_fail(name: str) -> None:
    assert header_key(name) == header_key(name.upper()) or name.upper().lower() != name.lower()
    canonical_name(name)
