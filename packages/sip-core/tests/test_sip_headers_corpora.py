"""Typed headers and URIs over the RFC 4475 / RFC 5118 torture messages and real-world captures.

The header section is cut out here (unfolded, split into lines) so these tests exercise the
header and URI parsers alone, independent of the message framing.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from rvoip_sip_core._errors import SipParseError
from rvoip_sip_core._headers import HEADER_TYPES
from rvoip_sip_core._lexer import split_list
from rvoip_sip_core._names import canonical_name
from rvoip_sip_core._uri import SipUri, parse_uri

_AUTH_MODULE = "rvoip_sip_core._headers.auth"
_FOLD = re.compile(r"\r?\n[ \t]+")

# (file, canonical header name) pairs the RFCs call malformed, or real captures that are.
_EXPECTED_BAD = {
    ("badinv01.dat", "Via"),
    ("badinv01.dat", "Contact"),
    ("ncl.dat", "Content-Length"),
    ("scalar02.dat", "CSeq"),
    ("scalar02.dat", "Max-Forwards"),
    ("scalar02.dat", "Expires"),
    ("scalarlg.dat", "CSeq"),
    ("scalarlg.dat", "Retry-After"),
    ("scalarlg.dat", "Warning"),
    ("quotbal.dat", "To"),
    ("regbadct.dat", "Contact"),
    ("badaspec.dat", "To"),
    ("baddn.dat", "From"),
    ("baddn.dat", "To"),
    ("aastra-intelligate-register-bare-lf.sip", "Via"),
    ("aastra-intelligate-register-bare-lf.sip", "Contact"),
    ("ekiga-3.2.7-register.sip", "Contact"),
    ("sct-dss-200ok-utf8-display-names.sip", "Contact"),
    ("audiocodes-mediant1000-invite.sip", "P-Asserted-Identity"),
}


def _rows(corpora: Path, sub: str) -> list[dict[str, str]]:
    with (corpora / sub / "index.tsv").open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _header_lines(data: bytes) -> tuple[str, list[tuple[str, str]]]:
    text = data.decode("utf-8", "surrogateescape")
    head = re.split(r"\r?\n\r?\n", text, maxsplit=1)[0]
    start, _, rest = _FOLD.sub(" ", head).partition("\n")
    lines = []
    for line in rest.split("\n"):
        name, colon, value = line.rstrip("\r").partition(":")
        if colon:
            lines.append((canonical_name(name.strip()), value.strip()))
    return start.rstrip("\r"), lines


def _check_message(file: str, data: bytes) -> set[tuple[str, str]]:
    """Type every header we own; return the (file, name) pairs that failed to parse."""
    bad: set[tuple[str, str]] = set()
    for name, value in _header_lines(data)[1]:
        cls = HEADER_TYPES.get(name.lower())
        if cls is None or cls.__module__ == _AUTH_MODULE:
            continue
        try:
            for item in split_list(value) if cls.MULTI else [value]:
                typed = cls.parse(item)
                assert cls.parse(str(typed)) == typed
        except SipParseError:
            bad.add((file, name))
    return bad


@pytest.mark.parametrize("sub", ["rfc4475", "real-world"])
def test_typed_headers_over_corpus(corpora: Path, sub: str) -> None:
    found: set[tuple[str, str]] = set()
    for row in _rows(corpora, sub):
        found |= _check_message(row["file"], (corpora / sub / row["file"]).read_bytes())
    expected = {pair for pair in _EXPECTED_BAD if (corpora / sub / pair[0]).exists()}
    assert found == expected


def test_rfc5118_headers_and_request_uris(corpora: Path) -> None:
    uris = {}
    for row in _rows(corpora, "rfc5118"):
        data = (corpora / "rfc5118" / row["wire_file"]).read_bytes()
        assert _check_message(row["name"], data) == set()
        start, _ = _header_lines(data)
        text = start.split(" ")[1]
        if row["expected"] == "invalid":
            # RFC 5118 §4.2: an IPv6 address in a SIP URI must be bracketed.
            with pytest.raises(SipParseError):
                parse_uri(text)
        else:
            uris[row["name"]] = parse_uri(text)
    ambiguous = uris["port-ambiguous"]
    assert isinstance(ambiguous, SipUri)
    assert (ambiguous.host, ambiguous.port) == ("[2001:db8::10:5070]", None)
    unambiguous = uris["port-unambiguous"]
    assert isinstance(unambiguous, SipUri)
    assert (unambiguous.host, unambiguous.port) == ("[2001:db8::10]", 5070)
    assert uris["ipv6-bug-abnf-3-colons"] == uris["ipv6-correct-abnf-2-colons"]


def test_rfc4475_request_uris(corpora: Path) -> None:
    for row in _rows(corpora, "rfc4475"):
        start, _ = _header_lines((corpora / "rfc4475" / row["file"]).read_bytes())
        parts = start.split(" ")
        if len(parts) != 3 or parts[0].startswith("SIP/"):
            continue
        try:
            uri = parse_uri(parts[1])
        except SipParseError:
            # RFC 4475 §3.1.2.7 ltgtruri (<...>) and §3.1.2.11 escruri-like shapes only.
            assert row["expected"] == "invalid", row["file"]
            continue
        assert str(uri) == parts[1]
