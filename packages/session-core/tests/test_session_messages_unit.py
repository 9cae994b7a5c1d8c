"""The pure parts of instant messaging: header validation, charsets, hook answers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_session_core import InstantMessage
from rvoip_session_core._messages import _status_of, extra_headers


def _message(content_type: str, body: bytes) -> InstantMessage:
    return InstantMessage("sip:a@x", "sip:b@y", content_type, body, (), "sip:b@y")


def test_text_follows_the_charset_parameter() -> None:
    """The body is decoded with its charset (quoted or not), UTF-8 by default or unknown."""
    assert _message("text/plain", "é".encode()).text == "é"
    assert _message('text/plain; charset="ISO-8859-1"', "é".encode("latin-1")).text == "é"
    assert _message("text/plain;charset=no-such-charset", b"ok").text == "ok"
    assert _message("text/plain;charset=utf-8", b"\xff").text == "\ufffd"


def test_extra_headers_refuse_what_the_stack_builds_and_injection() -> None:
    """Stack-built headers (long or compact form), CR/LF in values and bad names raise."""
    assert extra_headers({"X-A": "1"}) == [("X-A", "1")]
    assert extra_headers([("Subject", "hi"), ("Subject", "again")]) == [
        ("Subject", "hi"),
        ("Subject", "again"),
    ]
    assert extra_headers(None) == []
    for name in ("Via", "v", "Call-ID", "i", "CSeq", "Content-Length", "l", "From", "To"):
        with pytest.raises(ValueError, match="built by the stack"):
            extra_headers({name: "x"})
    with pytest.raises(ValueError, match="CR or LF"):
        extra_headers({"X-A": "1\r\nVia: evil"})
    with pytest.raises(ValueError, match="not a header name"):
        extra_headers({"X A": "1"})
    with pytest.raises(ValueError, match="not a header name"):
        extra_headers({"": "1"})


@given(st.text(max_size=20), st.text(max_size=40))
def test_extra_headers_never_let_a_line_break_through(name: str, value: str) -> None:
    """Whatever the application passes, what comes out has no CR/LF and a token name."""
    try:
        out = extra_headers({name: value})
    except ValueError:
        return
    ((n, v),) = out
    assert "\r" not in v
    assert "\n" not in v
    assert n.isascii()
    assert ":" not in n
    assert " " not in n


def test_hook_answers_become_final_statuses() -> None:
    """None is 200; a final status is kept; anything else (1xx, bool, text) is a 500."""
    assert _status_of(None) == 200
    assert _status_of(415) == 415
    assert _status_of(202) == 202
    assert _status_of(180) == 500
    assert _status_of(True) == 500
    assert _status_of("200") == 500
