"""Tests of token-list headers (rvoip_sip_core._headers.lists)."""

from __future__ import annotations

import pytest

from rvoip_sip_core._errors import SipParseError
from rvoip_sip_core._headers import Allow, ProxyRequire, Require, Supported, Unsupported
from rvoip_sip_core._lexer import split_list


def test_token_lists() -> None:
    assert Allow.parse("INVITE").method == "INVITE"
    assert Supported.parse(" 100rel ").value == "100rel"
    assert Require.parse("timer") == Require("timer")
    assert str(ProxyRequire.parse("sec-agree")) == "sec-agree"
    assert Unsupported.parse("foo") != Require.parse("foo")
    assert all(c.MULTI for c in (Allow, Supported, Require, ProxyRequire, Unsupported))
    for bad in ("", "a b", "a,b"):
        with pytest.raises(SipParseError):
            Allow.parse(bad)


def test_list_line() -> None:
    # RFC 3261 §7.3.1: a list header may be empty (Supported:) or carry several elements.
    assert [Supported.parse(v) for v in split_list("")] == []
    line = "INVITE, ACK ,CANCEL,\r\n BYE"
    assert [str(Allow.parse(v)) for v in split_list(line)] == ["INVITE", "ACK", "CANCEL", "BYE"]
