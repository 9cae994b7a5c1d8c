"""The bounded memo behind the shared typed values, URIs and SDP lines."""

from __future__ import annotations

import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from rvoip_sip_core import (
    Request,
    _message,
    _names,
    _parser,
    _sdp,
    _sdp_model,
    header_key,
    parse_message,
)
from rvoip_sip_core._memo import MAX_NAME_CHARS, MAX_VALUE_CHARS, remember, remember_name
from rvoip_sip_core._sdp import parse_sdp


@given(st.lists(st.text(max_size=4)), st.integers(min_value=1, max_value=8))
def test_remember_stays_bounded_and_keeps_the_latest(keys: list[str], limit: int) -> None:
    table: dict[str, int] = {}
    for index, key in enumerate(keys):
        assert remember(table, key, index, limit) == index
        assert table[key] == index
        assert len(table) <= limit


def test_a_full_table_is_cleared_before_the_new_entry() -> None:
    table = {"a": 1, "b": 2}
    remember(table, "c", 3, 2)
    assert table == {"c": 3}


def test_text_longer_than_the_entry_limit_is_not_stored() -> None:
    table: dict[str, int] = {}
    assert remember(table, "k", 1, 8, size=MAX_VALUE_CHARS + 1) == 1
    assert table == {}
    assert remember_name(table, "x" * (MAX_NAME_CHARS + 1), 2, 8) == 2
    assert table == {}
    remember_name(table, "x" * MAX_NAME_CHARS, 3, 8)
    assert len(table) == 1


def _memo_sizes() -> dict[str, int]:
    return {
        "names": len(_parser._NAMES),
        "methods": len(_parser._METHODS),
        "keys": len(_names._KEYS),
        "shared": len(_message._SHARED),
        "uris": len(_message._URIS),
        "connections": len(_sdp._CONNECTIONS),
        "rtpmaps": len(_sdp_model._RTPMAP_MEMO),
    }


def _hostile(index: int, size: int) -> bytes:
    pad = f"{index:08d}".encode() + b"x" * size
    return (
        b"M" + pad + b" sip:" + pad + b"@h SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: <sip:" + pad + b"@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\n"
        b"CSeq: 1 M" + pad + b"\r\nX-" + pad + b": v\r\nContent-Length: 0\r\n\r\n"
    )


def test_distinct_big_names_and_values_do_not_pin_memory() -> None:
    """Issue 10: the memos grew for ever with attacker-chosen methods and header names.

    Each memo was bounded in count only (4,096), so 4,096 distinct big methods or header
    names (up to the 256 KiB message limit each) held ~370 MB for the life of the
    process. Now entries above MAX_NAME_CHARS / MAX_VALUE_CHARS are never stored.
    """
    parse_message(_hostile(-1, 16))  # warm the import-time state before measuring
    before = _memo_sizes()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for index in range(200):
            msg = parse_message(_hostile(index, 32_768))
            assert isinstance(msg, Request)
            touch = (msg.from_, msg.cseq, msg.uri, msg.headers.get(f"X-{index:08d}" + "x" * 32_768))
            assert touch[0] is not None
            sdp = f"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 {'h' * 4096}{index}\r\n"
            sdp += f"t=0 0\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0 {'P' * 4096}{index}/8000\r\n"
            parse_sdp(sdp).media[0].rtpmaps()
        del msg, touch
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert held < 1_000_000, f"{held} bytes still held after 200 hostile messages"
    after = _memo_sizes()
    assert after == before


def test_a_table_full_of_junk_names_still_learns_good_ones() -> None:
    """A memo that only stopped filling when full kept later (good) names out for ever."""
    for index in range(5000):
        parse_message(
            f"OPTIONS sip:h SIP/2.0\r\nX-J{index}: 1\r\nContent-Length: 0\r\n\r\n".encode()
        )
        header_key(f"Y-J{index}")
    parse_message(b"OPTIONS sip:h SIP/2.0\r\nX-Good-Name: 1\r\nContent-Length: 0\r\n\r\n")
    header_key("Y-Good-Name")
    assert "X-Good-Name" in _parser._NAMES
    assert "Y-Good-Name" in _names._KEYS
    assert len(_parser._NAMES) <= _parser._MEMO_LIMIT
    assert len(_names._KEYS) <= _names._CACHE_LIMIT
