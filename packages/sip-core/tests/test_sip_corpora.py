"""Every message of the RFC 4475 / RFC 5118 torture corpora and the real-world corpus.

Each RFC message is handled as its ``index.tsv`` row and the RFC text say: valid
ones parse with full validation (``strict=True``), re-serialize and re-parse to an
equal model; invalid ones raise SipParseError with a fitting status, except where
the RFC allows a tolerant parser to accept (documented per case in the tables).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from rvoip_sip_core import (
    AbsoluteUri,
    Message,
    Request,
    Response,
    SipParseError,
    SipUri,
    parse_message,
)

# name -> None (must parse) or the status of the SipParseError it must raise.
RFC4475: dict[str, int | None] = {
    # §3.1.1 valid
    "wsinv": None,
    "intmeth": None,
    "esc01": None,
    "escnull": None,
    "esc02": None,
    "lwsdisp": None,  # valid-but-unusual: "accept as well-formed"
    "longreq": None,
    "dblreq": None,  # RFC 3261 §18.3: octets after Content-Length 0 are discarded
    "semiuri": None,
    "transports": None,
    "mpart01": None,
    "unreason": None,
    "noreason": None,
    # §3.1.2 invalid
    "badinv01": 400,  # empty Via/Contact params
    "clerr": 400,  # datagram shorter than Content-Length
    "ncl": 400,  # negative Content-Length
    "scalar02": 400,  # CSeq beyond 2**31-1
    "scalarlg": 400,  # response: CSeq beyond 2**31-1 (discard)
    "quotbal": 400,
    "ltgtruri": 400,  # we do not take the liberal "strip brackets" option
    "lwsruri": 400,
    "lwsstart": 400,  # "may reject": rejected (single SP between elements)
    "trws": 400,  # "may reject": rejected (trailing SP after SIP-Version)
    "escruri": 400,  # RFC 3261 §19.1.5: no headers in a Request-URI
    # baddate: "may reject; or ignore/convert the Date": accepted, Date is not typed.
    "baddate": None,
    "regbadct": 400,  # addr-spec Contact with URI headers outside <>
    "badaspec": 400,  # we do not take the liberal "ignore spaces" option
    "baddn": 400,
    "badvers": 505,
    "mismatch01": 400,
    "mismatch02": 400,  # 501 is the UAS's answer; as a parse error 400 is allowed
    "bigcode": 400,
    # §3.2, §3.3, §3.4
    "badbranch": None,
    "insuf": 400,  # no Call-ID, From, To
    "unkscm": None,  # parses as AbsoluteUri; the UAS answers 416
    "novelsc": None,
    "unksm2": None,
    "bext01": None,  # the UAS answers 420
    "invut": None,  # the UAS answers 415
    "regaut01": None,
    "multi01": 400,  # repeated single-value headers with different values
    "mcl01": 400,  # conflicting Content-Length values
    "bcast": None,
    "zeromf": None,
    "cparam01": None,
    "cparam02": None,
    "regescrt": None,
    "sdp01": None,  # the UAS answers 406
    "inv2543": None,  # RFC 2543 syntax, no Content-Length: body is the rest
}

RFC5118: dict[str, int | None] = {
    "ipv6-good": None,
    "ipv6-bad": 400,
    "port-ambiguous": None,
    "port-unambiguous": None,
    "via-received-param-with-delim": None,  # "accept both forms"
    "via-received-param-no-delim": None,
    "ipv6-in-sdp": None,
    "mult-ip-in-header": None,
    "mult-ip-in-sdp": None,
    "ipv4-mapped-ipv6": None,
    "ipv6-bug-abnf-3-colons": None,  # "an implementation must tolerate" it
    "ipv6-correct-abnf-2-colons": None,
}

# Real-world messages malformed on purpose (device bugs): they parse (lazy), but
# full validation rejects them. (vericall-edge-invite-malformed-from.sip, a raw 0x8E
# in an unquoted display name, is tolerated: the From parser accepts the octet.)
REAL_WORLD_STRICT_REJECTS = {
    "aastra-intelligate-register-bare-lf.sip",  # Via "5060port"
    "ekiga-3.2.7-register.sip",  # Contact <sip:user@host, sip:5060>
    "sct-dss-200ok-utf8-display-names.sip",  # Contact "sip: 172.17.2.2:5060" (SP after sip:)
    # ?REQUIRE=replaces in the Request-URI: RFC 3261 §19.1.5 allows no URI headers there
    # (the same rule as RFC 4475 escruri).
    "polycom-spip601-invite-replaces.sip",
}


def index(folder: Path) -> list[dict[str, str]]:
    with (folder / "index.tsv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def same_model(a: Message, b: Message) -> bool:
    """Equal messages, ignoring only a Content-Length line that serialization added."""
    return a.without_header("Content-Length") == b.without_header("Content-Length")


def check_round_trip(data: bytes, msg: Message) -> None:
    wire = msg.encode()
    again = parse_message(wire, strict=True)
    assert same_model(again, msg)
    assert again.encode() == wire  # a fixed point after one serialization
    assert again.vias == msg.vias
    assert again.from_ == msg.from_
    assert again.to == msg.to
    assert again.cseq == msg.cseq
    assert again.call_id == msg.call_id
    assert again.contacts == msg.contacts
    head, _, _ = data.partition(b"\r\n\r\n")
    if (
        b"\r\n " not in head
        and b"\r\n\t" not in head
        and msg.headers.get("content-length") == str(len(msg.body))
        and data.endswith(msg.body)
    ):
        assert wire == data[: len(wire)]  # untouched headers re-serialize byte-identical


def test_tables_cover_the_indexes(corpora: Path) -> None:
    assert {row["name"] for row in index(corpora / "rfc4475")} == set(RFC4475)
    assert {row["name"] for row in index(corpora / "rfc5118")} == set(RFC5118)
    rows = index(corpora / "rfc4475")
    for row in rows:  # our table agrees with the index on every "valid" row
        if row["expected"] != "invalid":
            assert RFC4475[row["name"]] is None, row["name"]


@pytest.mark.parametrize("name", sorted(RFC4475))
def test_rfc4475(corpora: Path, name: str) -> None:
    data = (corpora / "rfc4475" / f"{name}.dat").read_bytes()
    status = RFC4475[name]
    if status is None:
        msg = parse_message(data, strict=True)
        check_round_trip(data, msg)
    else:
        with pytest.raises(SipParseError) as info:
            parse_message(data, strict=True)
        assert info.value.status == status, info.value.reason
        if name not in ("badvers", "bigcode"):
            assert info.value.recovered, "Via/From/To/Call-ID/CSeq should be recovered"


@pytest.mark.parametrize("name", sorted(RFC5118))
def test_rfc5118_wire(corpora: Path, name: str) -> None:
    data = (corpora / "rfc5118" / "wire" / f"{name}.dat").read_bytes()
    status = RFC5118[name]
    if status is None:
        check_round_trip(data, parse_message(data, strict=True))
    else:
        with pytest.raises(SipParseError) as info:
            parse_message(data, strict=True)
        assert info.value.status == status


@pytest.mark.parametrize("name", sorted(RFC5118))
def test_rfc5118_archive_bytes(corpora: Path, name: str) -> None:
    """The archive form (bare LF, two files without the empty line, two short bodies)."""
    data = (corpora / "rfc5118" / f"{name}.dat").read_bytes()
    short = name in ("ipv6-in-sdp", "mult-ip-in-sdp")  # Content-Length beyond the LF body
    if short:
        with pytest.raises(SipParseError) as info:
            parse_message(data)  # RFC 3261 §18.3
        assert info.value.status == 400
    if RFC5118[name] is None:
        msg = parse_message(data, strict=True, allow_short_body=short)
        wire = parse_message((corpora / "rfc5118" / "wire" / f"{name}.dat").read_bytes())
        assert msg.headers.without("l") == wire.headers.without("l")
        assert (
            msg.encode()
            .replace(b"\r\n", b"\n")
            .startswith(wire.encode().replace(b"\r\n", b"\n").split(b"Content-Length")[0])
        )


def test_rfc4475_details(corpora: Path) -> None:
    def load(name: str) -> Message:
        return parse_message((corpora / "rfc4475" / f"{name}.dat").read_bytes(), strict=True)

    wsinv = load("wsinv")
    assert isinstance(wsinv, Request)
    assert wsinv.max_forwards == 68
    assert wsinv.cseq.seq == 9
    assert len(wsinv.vias) == 3
    assert wsinv.headers.get("s") == ""
    assert wsinv.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    esc02 = load("esc02")
    assert len(esc02.contacts) == 2  # "C%6Fntact" is another header
    assert esc02.headers.get("C%6Fntact") is not None
    assert len(load("escnull").contacts) == 2
    dblreq = load("dblreq")
    assert isinstance(dblreq, Request)
    assert (dblreq.method, dblreq.body) == ("REGISTER", b"")
    assert len(load("inv2543").body) == 105
    assert isinstance(load("unkscm").uri, AbsoluteUri)  # type: ignore[union-attr]
    unreason = load("unreason")
    assert isinstance(unreason, Response)
    assert unreason.status == 200
    assert not unreason.reason.isascii()
    noreason = load("noreason")
    assert isinstance(noreason, Response)
    assert noreason.reason == ""
    mpart = (corpora / "rfc4475" / "mpart01.dat").read_bytes()
    assert parse_message(mpart).body == mpart[-len(parse_message(mpart).body) :]
    assert [v.transport for v in load("transports").vias] == [
        "UDP",
        "SCTP",
        "TLS",
        "UNKNOWN",
        "TCP",
    ]


def test_rfc5118_details(corpora: Path) -> None:
    def uri(name: str) -> SipUri:
        msg = parse_message((corpora / "rfc5118" / "wire" / f"{name}.dat").read_bytes())
        assert isinstance(msg, Request)
        assert isinstance(msg.uri, SipUri)
        return msg.uri

    assert (uri("port-ambiguous").host, uri("port-ambiguous").port) == (
        "[2001:db8::10:5070]",
        None,
    )
    assert (uri("port-unambiguous").host, uri("port-unambiguous").port) == ("[2001:db8::10]", 5070)


def test_real_world(corpora: Path) -> None:
    folder = corpora / "real-world"
    rows = index(folder)
    assert len(rows) == 29
    for row in rows:
        data = (folder / row["file"]).read_bytes()
        short = "shorter" in row["framing"]
        if short:
            # RFC 3261 §18.3: as a datagram this is a 400, with the fields recovered.
            with pytest.raises(SipParseError) as info:
                parse_message(data)
            assert info.value.status == 400
            assert info.value.recovered.get("call-id"), row["file"]
        msg = parse_message(data, allow_short_body=short)
        if row["start"].startswith("SIP/2.0"):
            assert isinstance(msg, Response)
            assert msg.status == int(row["start"].split()[1])
        else:
            assert isinstance(msg, Request)
            assert msg.method == row["start"]
        assert msg.call_id
        if "longer" in row["framing"] or row["framing"] == "ok":
            assert len(msg.body) == int(row["content_length_declared"])
        if row["file"] in REAL_WORLD_STRICT_REJECTS:
            with pytest.raises(SipParseError):
                parse_message(data, strict=True, allow_short_body=short)
        else:
            strict = parse_message(data, strict=True, allow_short_body=short)
            assert strict.cseq.seq >= 0
            again = parse_message(strict.encode(), strict=True)
            assert same_model(again, strict), row["file"]
