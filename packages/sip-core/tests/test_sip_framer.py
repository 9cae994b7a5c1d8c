"""StreamFramer: Content-Length framing on a stream, partial input, CRLF keep-alives."""

from __future__ import annotations

import pytest

from rvoip_sip_core import KeepAlive, SipParseError, StreamFramer, parse_message

MSG = (
    b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
    b"From: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c\r\n"
    b"CSeq: 1 OPTIONS\r\nContent-Length: 4\r\n\r\nbody"
)
EMPTY = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: 0\r\n\r\n"


def test_whole_messages_and_keepalives() -> None:
    framer = StreamFramer()
    out = framer.feed(MSG + b"\r\n\r\n" + EMPTY + b"\r\n" + MSG)
    assert out == [MSG, KeepAlive(ping=True), EMPTY, MSG]
    assert parse_message(MSG).body == b"body"
    assert framer.buffered == 0


def test_partial_input_waits() -> None:
    framer = StreamFramer()
    assert framer.feed(MSG[:10]) == []
    assert framer.feed(MSG[10:-2]) == []
    assert framer.buffered == len(MSG) - 2
    assert framer.feed(MSG[-2:] + EMPTY[:5]) == [MSG]
    assert framer.feed(EMPTY[5:]) == [EMPTY]


def test_lone_crlf_ignored_and_split_ping() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == []  # could become a ping
    assert framer.feed(b"\r") == []
    assert framer.feed(b"\n") == [KeepAlive()]
    assert framer.feed(b"\r\n") == []
    assert framer.feed(EMPTY) == [EMPTY]  # the lone CRLF was dropped


def test_body_with_blank_lines_is_framed_by_length() -> None:
    body = b"\r\n\r\nx\r\n\r\n"
    msg = MSG.replace(b"Content-Length: 4", b"Content-Length: %d" % len(body))[:-4] + body
    assert StreamFramer().feed(msg + EMPTY) == [msg, EMPTY]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n", 400),  # no Content-Length
        (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nl: 5\r\nContent-Length: 6\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99999999\r\n\r\n", 413),
        (b"\rjunk", 400),
    ],
)
def test_unframeable_streams(data: bytes, status: int) -> None:
    framer = StreamFramer()
    with pytest.raises(SipParseError) as info:
        framer.feed(data)
    assert info.value.status == status
    with pytest.raises(SipParseError):
        framer.feed(EMPTY)  # a failed stream stays failed


def test_header_section_too_large() -> None:
    framer = StreamFramer(max_head=100)
    with pytest.raises(SipParseError) as info:
        framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X-Pad: " + b"a" * 200)
    assert info.value.status == 413


def test_bare_lf_head_on_stream() -> None:
    msg = b"OPTIONS sip:a@b SIP/2.0\nCall-ID: x\nContent-Length: 2\n\nhi"
    assert StreamFramer().feed(msg + msg) == [msg, msg]
    assert parse_message(msg).body == b"hi"
