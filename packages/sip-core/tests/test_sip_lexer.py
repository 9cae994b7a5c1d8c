"""Tests of the lexing helpers (rvoip_sip_core._lexer)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_sip_core._errors import SipParseError
from rvoip_sip_core._lexer import (
    format_params,
    get_param,
    is_token,
    normalize_lws,
    parse_params,
    quote,
    split_list,
    split_simple_params,
    unquote,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a, b ,c", ["a", "b", "c"]),
        ("", []),
        ("a,,b", ["a", "b"]),
        (
            '"Bell, Alexander" <sip:a@b>;tag=1, <sip:c@d>',
            ['"Bell, Alexander" <sip:a@b>;tag=1', "<sip:c@d>"],
        ),
        ("<sip:x@y;a=b,c>;q=1, <sip:z@w>", ["<sip:x@y;a=b,c>;q=1", "<sip:z@w>"]),
        (r'"a \", b" <sip:x@y>, <sip:z@w>', [r'"a \", b" <sip:x@y>', "<sip:z@w>"]),
        ("SIP/2.0/UDP a;branch=1,\r\n SIP/2.0/TCP b", ["SIP/2.0/UDP a;branch=1", "SIP/2.0/TCP b"]),
    ],
)
def test_split_list(value: str, expected: list[str]) -> None:
    assert split_list(value) == expected


@pytest.mark.parametrize("value", ['"unterminated, a', "<sip:a@b, c"])
def test_split_list_unbalanced(value: str) -> None:
    with pytest.raises(SipParseError):
        split_list(value)


def test_parse_params_lws_and_quotes() -> None:
    # RFC 4475 §3.1.1.1 wsinv style: LWS (and folds) around ';' and '='.
    text = ' ;   tag    = 1918181833n ; newparam =\r\n      newvalue ;\r\n  flag ; q="a;b, c"'
    assert parse_params(text) == (
        ("tag", "1918181833n"),
        ("newparam", "newvalue"),
        ("flag", None),
        ("q", '"a;b, c"'),
    )
    assert parse_params("a=b;c") == (("a", "b"), ("c", None))
    assert parse_params("") == ()
    assert parse_params(";received=[2001:db8::9:255]") == (("received", "[2001:db8::9:255]"),)


@pytest.mark.parametrize("text", [";;", ";a=", "; =b", ";a=b junk", ';a="x', ";a b"])
def test_parse_params_malformed(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_params(text)


def test_split_simple_params() -> None:
    assert split_simple_params(";tag=abc") == (("tag", "abc"),)
    assert split_simple_params(";lr") == (("lr", None),)
    assert split_simple_params(";a=1;b;c=2") == (("a", "1"), ("b", None), ("c", "2"))
    for bad in (";", ";=1", ";a=", ";a==1", ";a;;b", ";a=1=2"):
        assert split_simple_params(bad) is None


def test_quote_unquote() -> None:
    assert quote('J Rosenberg \\"') == r'"J Rosenberg \\\""'
    assert unquote(r'"J Rosenberg \\\""') == 'J Rosenberg \\"'
    assert unquote("token") == "token"
    assert unquote('""') == ""


def test_tokens_and_lws() -> None:
    assert is_token("!interesting-Method0123456789_*+`.%indeed'~")
    assert not is_token("")
    assert not is_token("a b")
    assert not is_token("a,b")
    assert normalize_lws("a\r\n  b\r\n\tc") == "a b c"
    assert normalize_lws("plain") == "plain"


def test_format_and_get_param() -> None:
    params = (("Tag", "x"), ("lr", None))
    assert format_params(params) == ";Tag=x;lr"
    assert get_param(params, "tag") == "x"
    assert get_param(params, "lr") is None
    assert get_param(params, "absent") is None


@given(
    st.lists(
        st.tuples(st.from_regex(r"[a-z0-9.!%*_+`'~-]+", fullmatch=True), st.none()), max_size=5
    )
)
def test_params_round_trip(params: list[tuple[str, None]]) -> None:
    assert parse_params(format_params(tuple(params))) == tuple(params)


@given(st.text())
def test_arbitrary_text_raises_only_parse_error(text: str) -> None:
    for fn in (split_list, parse_params, split_simple_params, unquote, normalize_lws):
        try:
            fn(text)
        except SipParseError:
            pass
