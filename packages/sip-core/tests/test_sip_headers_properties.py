"""Hypothesis properties of every typed header and the HEADER_TYPES registry."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rvoip_sip_core._errors import SipParseError
from rvoip_sip_core._headers import HEADER_TYPES, Contact, From, Via
from rvoip_sip_core._lexer import format_params, split_list
from rvoip_sip_core.testing.header_strategies import (
    contacts,
    name_addr_headers,
    typed_headers,
    vias,
)

_AUTH = {
    "www-authenticate",
    "authorization",
    "proxy-authenticate",
    "proxy-authorization",
    "authentication-info",
}
_ALL = sorted(HEADER_TYPES)


def test_registry() -> None:
    expected = {
        "via", "from", "to", "contact", "route", "record-route", "refer-to", "referred-by",
        "p-asserted-identity", "call-id", "cseq", "max-forwards", "content-type",
        "content-length", "content-disposition", "expires", "min-expires", "allow",
        "supported", "require", "proxy-require", "unsupported", "rseq", "rack", "event",
        "subscription-state", "replaces", "session-expires", "min-se", "reason",
        "user-agent", "server", "accept", "retry-after", "warning",
    } | _AUTH  # fmt: skip
    assert set(HEADER_TYPES) == expected
    for name, cls in HEADER_TYPES.items():
        assert cls.NAME.lower() == name
        assert isinstance(cls.MULTI, bool)


@given(typed_headers())
def test_round_trip(header: Any) -> None:
    again = type(header).parse(str(header))
    assert again == header
    assert str(again) == str(header)


@given(st.lists(st.one_of(vias(), contacts()), min_size=1, max_size=4))
def test_multi_line_split(items: list[Via | Contact]) -> None:
    cls = type(items[0])
    same = [i for i in items if type(i) is cls]
    if cls is Contact and len(same) > 1:
        same = [c for c in same if not c.is_wildcard]
    line = ", ".join(str(i) for i in same)
    assert [cls.parse(v) for v in split_list(line)] == same


@given(name_addr_headers())
def test_name_addr_unfolded_spacing(header: Any) -> None:
    # Extra LWS (with a fold) around ';' and '=' does not change the value.
    full = str(header)
    head = full[: len(full) - len(format_params(header.params))]
    spaced = "".join(f" \r\n ; {k}" + ("" if v is None else f" =  {v}") for k, v in header.params)
    assert type(header).parse(head + spaced) == header


@pytest.mark.parametrize("name", _ALL)
@settings(max_examples=40)
@given(text=st.text(max_size=40))
def test_arbitrary_text_raises_only_parse_error(name: str, text: str) -> None:
    cls = HEADER_TYPES[name]
    try:
        value = cls.parse(text)
    except SipParseError:
        return
    assert isinstance(value, cls)
    assert cls.parse(str(value)) == value


@given(st.text(alphabet='<>";,=@: \t\r\nsip\\abc%[]', max_size=40))
def test_structured_junk_raises_only_parse_error(text: str) -> None:
    for cls in (Via, From, Contact):
        try:
            value = cls.parse(text)
        except SipParseError:
            continue
        assert cls.parse(str(value)) == value
