"""Header names: compact forms, canonical spelling, lookup keys."""

from __future__ import annotations

import pytest

from rvoip_sip_core import COMPACT_FORMS, canonical_name, header_key


@pytest.mark.parametrize(
    ("short", "long"),
    [
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("f", "From"),
        ("t", "To"),
        ("v", "Via"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("k", "Supported"),
        ("s", "Subject"),
        ("e", "Content-Encoding"),
        ("o", "Event"),
        ("u", "Allow-Events"),
        ("r", "Refer-To"),
        ("b", "Referred-By"),
        ("a", "Accept-Contact"),
        ("y", "Identity"),
        ("x", "Session-Expires"),
    ],
)
def test_compact_forms_expand(short: str, long: str) -> None:
    assert canonical_name(short) == long
    assert canonical_name(short.upper()) == long
    assert header_key(short) == long.lower()
    assert header_key(short.upper()) == header_key(long.upper())
    assert COMPACT_FORMS[short] == long


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("call-id", "Call-ID"),
        ("CALL-ID", "Call-ID"),
        ("cseq", "CSeq"),
        ("www-authenticate", "WWW-Authenticate"),
        ("rack", "RAck"),
        ("max-forwards", "Max-Forwards"),
        ("x-custom-thing", "X-Custom-Thing"),
        ("p-asserted-identity", "P-Asserted-Identity"),
        ("  via ", "Via"),
    ],
)
def test_canonical_spelling(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


def test_header_key_is_case_insensitive_and_memoised() -> None:
    assert header_key("MaX-fOrWaRdS") == "max-forwards"
    assert header_key("MaX-fOrWaRdS") == "max-forwards"  # second call from the memo
    assert header_key("NewFangledHeader") == "newfangledheader"
