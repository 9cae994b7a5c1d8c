"""Tests for the SDP model, parser and serializer (rvoip_sip_core._sdp*)."""

from __future__ import annotations

import re

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_sip_core._errors import SipParseError
from rvoip_sip_core._sdp import (
    DIRECTIONS,
    STATIC_PAYLOAD_TYPES,
    Attribute,
    Bandwidth,
    Connection,
    Crypto,
    CryptoKey,
    Fmtp,
    MediaDescription,
    Origin,
    Rtcp,
    RtpMap,
    SdpParseError,
    SessionDescription,
    TimeZone,
    Timing,
    answer_direction,
    answer_media,
    codecs_match,
    is_ip_literal,
    make_answer,
    make_media,
    make_sdp,
    parse_sdp,
    parse_uint,
    split_fields,
)
from rvoip_sip_core.testing.sdp_strategies import (
    cryptos,
    media_descriptions,
    rtpmaps,
    session_descriptions,
)

# RFC 8866 §5 example, extended with every line type.
FULL = (
    "v=0\r\n"
    "o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1\r\n"
    "s=Call to John Smith\r\n"
    "i=SDP Offer #1\r\n"
    "u=http://www.jdoe.example.com/home.html\r\n"
    "e=Jane Doe <jane@jdoe.example.com>\r\n"
    "p=+1 617 555-6011\r\n"
    "c=IN IP4 198.51.100.1\r\n"
    "b=CT:128\r\n"
    "t=3724394400 3724398000\r\n"
    "r=7d 1h 0 25h\r\n"
    "t=0 0\r\n"
    "z=2882844526 -1h 2898848070 0\r\n"
    "k=prompt\r\n"
    "a=recvonly\r\n"
    "a=tool:rvoip\r\n"
    "m=audio 49170 RTP/AVP 0 8 101\r\n"
    "i=voice\r\n"
    "c=IN IP4 203.0.113.1\r\n"
    "b=AS:64\r\n"
    "k=clear:secret\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "a=maxptime:150\r\n"
    "a=rtcp:53021 IN IP4 203.0.113.1\r\n"
    "a=rtcp-mux\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
    "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\n"
    "a=sendonly\r\n"
    "m=video 51372/2 RTP/AVP 99\r\n"
    "c=IN IP6 FF1E:03AD::7F2E:172A:1E24/3\r\n"
    "c=IN IP4 233.252.0.1/127/2\r\n"
    "a=rtpmap:99 h263-1998/90000\r\n"
    "x=unknown line kept\r\n"
)


def test_full_parse_fields() -> None:
    sdp = parse_sdp(FULL)
    assert sdp.version == 0
    assert sdp.origin == Origin("jdoe", "3724394400", "3724394405", "IN", "IP4", "198.51.100.1")
    assert sdp.session_name == "Call to John Smith"
    assert sdp.information == "SDP Offer #1"
    assert sdp.uri == "http://www.jdoe.example.com/home.html"
    assert sdp.emails == ("Jane Doe <jane@jdoe.example.com>",)
    assert sdp.phones == ("+1 617 555-6011",)
    assert sdp.connection == Connection("IN", "IP4", "198.51.100.1")
    assert sdp.bandwidths == (Bandwidth("CT", 128),)
    assert sdp.times == (Timing(3724394400, 3724398000, ("7d 1h 0 25h",)), Timing(0, 0))
    assert sdp.time_zones == (TimeZone(2882844526, "-1h"), TimeZone(2898848070, "0"))
    assert sdp.key == "prompt"
    assert sdp.direction == "recvonly"
    assert sdp.get_attribute("tool") == Attribute("tool", "rvoip")
    audio, video = sdp.media
    assert (audio.media, audio.port, audio.proto, audio.formats) == (
        "audio",
        49170,
        "RTP/AVP",
        ("0", "8", "101"),
    )
    assert audio.information == "voice"
    assert audio.key == "clear:secret"
    assert audio.bandwidths == (Bandwidth("AS", 64),)
    assert video.port_count == 2
    assert video.connections == (
        Connection("IN", "IP6", "FF1E:03AD::7F2E:172A:1E24", None, 3),
        Connection("IN", "IP4", "233.252.0.1", 127, 2),
    )
    assert video.unknown_lines == (("x", "unknown line kept"),)


def test_full_round_trip_exact() -> None:
    sdp = parse_sdp(FULL)
    assert str(sdp) == FULL
    assert sdp.encode() == FULL.encode()
    assert bytes(sdp) == FULL.encode()
    assert parse_sdp(FULL.encode()) == sdp


def test_typed_views() -> None:
    sdp = parse_sdp(FULL)
    audio, video = sdp.media
    assert audio.payload_types == (0, 8, 101)
    assert audio.rtpmaps() == (
        RtpMap(0, "PCMU", 8000),
        RtpMap(101, "telephone-event", 8000),
    )
    assert audio.rtpmap(101) == RtpMap(101, "telephone-event", 8000)
    # No rtpmap for 8: RFC 3551's static table answers.
    assert audio.rtpmap(8) == RtpMap(8, "PCMA", 8000, 1)
    assert audio.rtpmap(77) is None
    assert audio.fmtp(101) == Fmtp("101", "0-16")
    assert audio.fmtp("0") is None
    assert audio.ptime == 20.0
    assert audio.maxptime == 150.0
    assert audio.rtcp == Rtcp(53021, "IN", "IP4", "203.0.113.1")
    assert audio.rtcp_mux
    assert audio.direction == "sendonly"
    (crypto,) = audio.crypto()
    assert crypto.tag == 1
    assert crypto.suite == "AES_CM_128_HMAC_SHA1_80"
    (key,) = crypto.key_params
    assert key.key_salt == "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
    assert key.lifetime == "2^20"
    assert key.lifetime_packets == 1 << 20
    assert (key.mki, key.mki_length) == (1, 32)
    assert len(key.key_and_salt()) == 30  # 16-byte key + 14-byte salt
    assert sdp.direction_for(audio) == "sendonly"
    assert sdp.direction_for(video) == "recvonly"
    assert video.direction is None
    assert video.rtcp is None
    assert not video.rtcp_mux
    assert sdp.connection_for(audio) == Connection("IN", "IP4", "203.0.113.1")
    bare = MediaDescription("audio", 1, "RTP/AVP", ("0",))
    assert sdp.connection_for(bare) == sdp.connection
    assert SessionDescription(sdp.origin).direction_for(bare) == "sendrecv"


def test_derivation_keeps_original() -> None:
    sdp = parse_sdp(FULL)
    audio = sdp.media[0]
    held = audio.with_direction("inactive")
    assert held.direction == "inactive"
    assert audio.direction == "sendonly"
    assert [a.name for a in held.attributes].count("inactive") == 1
    assert "sendonly" not in [a.name for a in held.attributes]
    new = sdp.with_media(0, held).with_next_version()
    assert new.media[0].direction == "inactive"
    assert new.origin.sess_version == "3724394406"
    assert sdp.origin.sess_version == "3724394405"
    assert sdp.media[1].with_direction("sendrecv").attributes[-1] == Attribute("sendrecv")
    assert audio.without_attribute("rtpmap").rtpmaps() == ()
    assert audio.with_attribute("label", "1").attribute_values("label") == ("1",)
    assert audio.with_port(0).port == 0
    assert sdp.with_direction("sendrecv").direction == "sendrecv"
    assert attrs.evolve(sdp, session_name="x").session_name == "x"
    with pytest.raises(ValueError, match="direction"):
        audio.with_direction("sideways")


def test_next_version_of_non_numeric() -> None:
    origin = Origin("Cisco-SIPUA", "(null)", "(null)", "IN", "IP4", "192.0.2.1")
    assert origin.next_version().sess_version == "1"


def test_make_sdp_offer() -> None:
    audio = make_media(
        40000,
        [STATIC_PAYLOAD_TYPES[0], STATIC_PAYLOAD_TYPES[8], RtpMap(101, "telephone-event", 8000)],
        fmtps=[Fmtp("101", "0-16")],
        ptime=20,
        direction="sendrecv",
        rtcp_mux=True,
    )
    sdp = make_sdp("192.0.2.10", [audio], sess_id=1234, sess_version=1)
    assert str(sdp) == (
        "v=0\r\n"
        "o=- 1234 1 IN IP4 192.0.2.10\r\n"
        "s=-\r\n"
        "c=IN IP4 192.0.2.10\r\n"
        "t=0 0\r\n"
        "m=audio 40000 RTP/AVP 0 8 101\r\n"
        "a=rtpmap:0 PCMU/8000/1\r\n"
        "a=rtpmap:8 PCMA/8000/1\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-16\r\n"
        "a=ptime:20\r\n"
        "a=rtcp-mux\r\n"
        "a=sendrecv\r\n"
    )
    assert parse_sdp(sdp.encode()) == sdp
    v6 = make_sdp("::1", [make_media(5000, [], connection_address="::1")], sess_id="9")
    assert v6.origin.addrtype == "IP6"
    assert v6.media[0].connections == (Connection("IN", "IP6", "::1"),)
    with pytest.raises(ValueError, match="direction"):
        make_media(1, [], direction="up")


def test_tolerant_line_endings_and_whitespace() -> None:
    lf = FULL.replace("\r\n", "\n")
    assert parse_sdp(lf) == parse_sdp(FULL)
    messy = FULL.replace("\r\n", " \t\r\r\n").replace("m=video", "\r\nm=video")
    assert parse_sdp(messy) == parse_sdp(FULL)
    assert parse_sdp(FULL.rstrip("\r\n")) == parse_sdp(FULL)


def test_tolerant_short_origin_and_out_of_order() -> None:
    sdp = parse_sdp("v=0\no=-1307081803 2 IN IP4 172.17.2.10\ns=Asterisk\nt=0 0\n")
    assert sdp.origin == Origin("", "-1307081803", "2", "IN", "IP4", "172.17.2.10")
    assert parse_sdp(str(sdp)) == sdp
    spaced = parse_sdp("v=0\no=Jo Doe 1 2 IN IP4 h\ns=x\nt=0 0\n")
    assert spaced.origin.username == "Jo Doe"
    # c= after a=, t= missing: accepted.
    odd = parse_sdp("v=0\no=a 1 2 IN IP4 h\ns=x\na=foo\nc=IN IP4 192.0.2.1\n")
    assert odd.connection == Connection("IN", "IP4", "192.0.2.1")
    assert odd.times == ()
    # A session-only line type inside a media section is kept there.
    media_t = parse_sdp("v=0\no=a 1 2 IN IP4 h\ns=x\nt=0 0\nm=audio 1 RTP/AVP 0\nt=1 2\n")
    assert media_t.media[0].unknown_lines == (("t", "1 2"),)


def test_malformed_typed_attributes_are_skipped_by_views() -> None:
    sdp = parse_sdp(
        "v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=video 3227 RTP/AVP 31\r\n"
        "a=rtpmap:31 LPC\r\na=ptime:abc\r\na=rtcp:x\r\na=crypto:1 X\r\na=fmtp:\r\n"
    )
    media = sdp.media[0]
    assert media.rtpmaps() == ()
    assert media.rtpmap(31) == RtpMap(31, "H261", 90000)
    assert media.ptime is None
    assert media.rtcp is None
    assert media.crypto() == ()
    assert media.fmtps() == ()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\r\n\r\n",
        "o=a 1 2 IN IP4 h\r\nv=0\r\n",
        "v=0\r\ns=x\r\nt=0 0\r\n",
        "v=0\r\no=a 1 2 IN IP4 h\r\nt=0 0\r\n",
        "v=0\r\nv=0\r\no=a 1 2 IN IP4 h\r\ns=x\r\n",
        "v=zero\r\no=a 1 2 IN IP4 h\r\ns=x\r\n",
        "v=0\r\no=a 1 2 IN IP4 h\r\ns=x\r\nt=0\r\n",
        "v=0\r\no=a 1 2 IN IP4 h\r\ns=x\r\nr=1 2 3\r\n",
        "v=0\r\no=IN IP4\r\ns=x\r\n",
        "v=0\r\no=a 1 2 IN IP4 h\r\ns=x\r\nc=IN IP4\r\n",
        "v=0\r\no=a 1 2 IN IP4 h\r\ns=x\r\nc=IN IP4 a/1/2/3\r\n",
        "v=0\r\no=a 1 2 IN IP4 h\r\ns=x\r\nc=IN IP6 ::1/1/2\r\n",
        "v=0\r\no=a 1 2 IN IP4 h\r\ns=x\r\nc=IN IP4 h\r\nc=IN IP4 h\r\n",
        "v=0\r\no=a 1 2 IN IP4 h\r\ns=x\r\nb=AS\r\n",
        "v=0\r\no=a 1 2 IN IP4 h\r\ns=x\r\nb=AS:x\r\n",
        "v=0\r\no=a 1 2 IN IP4 h\r\ns=x\r\nz=1\r\n",
        "v=0\r\no=a 1 2 IN IP4 h\r\ns=x\r\na=\r\n",
        "v=0\r\no=a 1 2 IN IP4 h\r\ns=x\r\nm=audio\r\n",
        "v=0\r\no=a 1 2 IN IP4 h\r\ns=x\r\nm=audio 70000 RTP/AVP 0\r\n",
        "v=0\r\no=a 1 2 IN IP4 h\r\ns=x\r\nm=audio 1/x RTP/AVP 0\r\n",
        "v=0\r\no=a 1 2 IN IP4 h\r\ns=x\r\nm=audio ١ RTP/AVP 0\r\n",
        "v=0\r\no=a 1 2 IN IP4 h\r\ns=x\r\nhello\r\n",
        "v=0\r\no=a 1 2 IN IP4 h\r\ns=x\r\nA=b\r\n",
    ],
)
def test_malformed_sdp_raises_sdp_parse_error(text: str) -> None:
    with pytest.raises(SdpParseError) as info:
        parse_sdp(text)
    assert isinstance(info.value, SipParseError)
    assert info.value.status == 400


def test_too_large() -> None:
    with pytest.raises(SdpParseError):
        parse_sdp(b"v=0\r\n" + b"a=x\r\n" * 300_000)


def test_undecodable_bytes_survive() -> None:
    raw = b"v=0\r\no=a 1 2 IN IP4 h\r\ns=caf\xe9\r\nt=0 0\r\n"
    assert parse_sdp(raw).encode() == raw


def test_rtpmap_and_rtcp_parse() -> None:
    assert RtpMap.parse("111 opus/48000/2") == RtpMap(111, "opus", 48000, 2)
    assert str(RtpMap(111, "opus", 48000, 2)) == "111 opus/48000/2"
    for bad in ["", "111", "111 opus", "x opus/8000", "1 /8000", "1 a/8000/2/3", "1 a/b"]:
        with pytest.raises(SdpParseError):
            RtpMap.parse(bad)
    assert Rtcp.parse("4001") == Rtcp(4001)
    assert str(Rtcp(4001)) == "4001"
    assert str(Rtcp(53027, "IN", "IP4", "199.7.173.162")) == "53027 IN IP4 199.7.173.162"
    with pytest.raises(SdpParseError):
        Rtcp.parse("1 IN IP4")


def test_fmtp_parameters() -> None:
    fmtp = Fmtp.parse("96 packetization-mode=1; profile-level-id=42e01f;flag")
    assert fmtp.parameters() == {
        "packetization-mode": "1",
        "profile-level-id": "42e01f",
        "flag": None,
    }
    assert str(Fmtp("101", "0-16")) == "101 0-16"
    assert str(Fmtp("101", "")) == "101"


def test_crypto_parse_forms() -> None:
    crypto = Crypto.parse(
        "1 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32;"
        "inline:KDc1eVlbOVN3aHdCM29nQy9BVmNFWjg1YmE5OF1T|2^20|2:32 KDR=1 UNENCRYPTED_SRTP"
    )
    assert len(crypto.key_params) == 2
    assert crypto.key_params[1].mki == 2
    assert crypto.session_params == ("KDR=1", "UNENCRYPTED_SRTP")
    assert Crypto.parse(str(crypto)) == crypto
    fresh = CryptoKey.inline(bytes(range(30)), "2^31")
    assert fresh.key_and_salt() == bytes(range(30))
    assert str(Crypto(1, "AES_CM_128_HMAC_SHA1_80", (fresh,))) == (
        "1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^31"
    )
    # MKI without lifetime, lifetime in plain digits, other key methods.
    assert CryptoKey.parse("inline:abcd|5:4") == CryptoKey("abcd", None, 5, 4)
    assert CryptoKey.parse("inline:abcd|1048576").lifetime_packets == 1048576
    assert CryptoKey.parse("inline:abcd").lifetime_packets is None
    other = CryptoKey.parse("uri:https://example.com/key")
    assert (other.method, other.key_salt) == ("uri", "https://example.com/key")
    with pytest.raises(SdpParseError):
        other.key_and_salt()
    with pytest.raises(SdpParseError):
        CryptoKey("!!notbase64!!").key_and_salt()
    # Unpadded base64 (40 chars of 30 bytes is exact; 58 chars decodes with padding added).
    assert len(CryptoKey("x" * 58).key_and_salt()) == 43
    for bad in [
        "inline",
        "inline:",
        "inline:a|b|c|d",
        "inline:a|2^99",
        "inline:a|1:x",
        "inline:a|x",
    ]:
        with pytest.raises(SdpParseError):
            CryptoKey.parse(bad)
    with pytest.raises(SdpParseError):
        Crypto.parse("x AES inline:abc")


@given(session_descriptions())
def test_generated_sdp_round_trips(sdp: SessionDescription) -> None:
    assert parse_sdp(str(sdp)) == sdp
    assert parse_sdp(sdp.encode()) == sdp


@given(media_descriptions())
def test_generated_media_serializes_in_order(media: MediaDescription) -> None:
    lines = media.lines()
    assert lines[0].startswith(f"m={media.media} ")
    order = "icbka"
    letters = [line[0] for line in lines[1 : len(lines) - len(media.unknown_lines)]]
    assert letters == sorted(letters, key=order.index)


@given(rtpmaps())
def test_rtpmap_round_trip(rtpmap: RtpMap) -> None:
    assert RtpMap.parse(str(rtpmap)) == rtpmap


@given(cryptos())
def test_crypto_round_trip(crypto: Crypto) -> None:
    assert Crypto.parse(str(crypto)) == crypto


@given(st.text(max_size=300))
def test_arbitrary_text_only_sdp_parse_error(text: str) -> None:
    try:
        parse_sdp(text)
    except SdpParseError:
        pass


@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_sdp_parse_error(data: bytes) -> None:
    try:
        sdp = parse_sdp(data)
    except SdpParseError:
        return
    assert parse_sdp(sdp.encode()) == sdp


@given(
    st.lists(
        st.sampled_from(
            [
                "v=0",
                "o=a 1 2 IN IP4 h",
                "s=x",
                "t=0 0",
                "m=audio 1 RTP/AVP 0",
                "a=rtpmap:0 x/1",
                "c=IN IP4 h/1",
                "b=AS:1",
                "r=1",
                "z=1 2",
                "k=x",
                "i=",
                "x=y",
                "a=",
                "m=",
                "q",
            ]
        ),
        max_size=15,
    )
)
def test_line_soup_only_sdp_parse_error(lines: list[str]) -> None:
    try:
        sdp = parse_sdp("\r\n".join(lines))
    except SdpParseError:
        return
    assert parse_sdp(str(sdp)) == sdp


# -- offer/answer builders (_sdp_build) ------------------------------------------------

PCMU, PCMA = STATIC_PAYLOAD_TYPES[0], STATIC_PAYLOAD_TYPES[8]
DTMF = RtpMap(101, "telephone-event", 8000)

OFFER = (
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 198.51.100.7\r\n"
    "s=-\r\n"
    "c=IN IP4 198.51.100.7\r\n"
    "t=0 0\r\n"
    "a=sendonly\r\n"
    "m=video 51372 RTP/AVP 31\r\n"
    "m=audio 49170 RTP/AVP 18 8 0 96\r\n"
    "a=rtpmap:96 telephone-event/8000\r\n"
    "a=fmtp:96 0-15\r\n"
    "a=fmtp:18 annexb=no\r\n"
    "a=rtcp-mux\r\n"
    "m=audio 49180 RTP/AVP 0\r\n"
)


def test_codecs_view() -> None:
    offer = parse_sdp(OFFER)
    assert offer.media[1].codecs() == (
        STATIC_PAYLOAD_TYPES[18],
        PCMA,
        PCMU,
        RtpMap(96, "telephone-event", 8000),
    )
    assert MediaDescription("audio", 1, "RTP/AVP", ("77", "x")).codecs() == ()


def test_make_answer_rfc3264() -> None:
    offer = parse_sdp(OFFER)
    answer = make_answer(
        offer,
        "192.0.2.99",
        port=30000,
        codecs=[PCMU, PCMA, DTMF],
        sess_id=42,
        ptime=20,
    )
    assert len(answer.media) == 3
    video, audio, second = answer.media
    assert (video.media, video.port) == ("video", 0)
    assert second.port == 0
    assert audio.port == 30000
    # Offer order and offer payload type numbers (96 for telephone-event, not our 101).
    assert audio.formats == ("8", "0", "96")
    assert audio.fmtp(96) == Fmtp("96", "0-15")
    assert audio.fmtp(18) is None
    # Session-level sendonly in the offer → recvonly in the answer.
    assert audio.direction == "recvonly"
    assert audio.rtcp_mux
    assert audio.ptime == 20.0
    assert answer.connection == Connection("IN", "IP4", "192.0.2.99")
    assert parse_sdp(answer.encode()) == answer
    assert answer.connection_for(audio) == Connection("IN", "IP4", "192.0.2.99")


def test_answer_media_rejections_and_directions() -> None:
    offer = parse_sdp(OFFER)
    audio = offer.media[1]
    assert answer_media(audio, [RtpMap(9, "G722", 8000)], port=1).port == 0
    assert answer_media(audio.with_port(0), [PCMU], port=1).port == 0
    rejected = answer_media(MediaDescription("audio", 5, "RTP/AVP"), [PCMU], port=1)
    assert (rejected.port, rejected.formats) == (0, ("0",))
    # Case-insensitive encoding names; no rtcp-mux unless offered.
    lower = answer_media(
        offer.media[2].with_attribute("rtpmap", "0 pcmu/8000"), [PCMU], port=7, rtcp_mux=True
    )
    assert lower.formats == ("0",)
    assert not lower.rtcp_mux
    held = answer_media(audio, [PCMU], port=7, direction="sendonly")
    # The m-line itself has no direction, so the offer counts as sendrecv here.
    assert held.direction == "sendonly"
    from_offer = answer_media(audio, [PCMU], port=7, offered_direction="sendonly")
    assert from_offer.direction == "recvonly"
    assert answer_direction("sendrecv") == "sendrecv"
    assert answer_direction("sendrecv", "sendonly") == "sendonly"
    assert answer_direction("recvonly") == "sendonly"
    assert answer_direction("sendonly") == "recvonly"
    assert answer_direction("inactive") == "inactive"
    assert answer_direction("sendonly", "sendonly") == "inactive"
    with pytest.raises(ValueError, match="direction"):
        answer_direction("up")


def test_codecs_match() -> None:
    assert codecs_match(RtpMap(0, "PCMU", 8000, 1), RtpMap(0, "pcmu", 8000))
    assert not codecs_match(RtpMap(111, "opus", 48000, 2), RtpMap(111, "opus", 48000))
    assert not codecs_match(PCMU, PCMA)


def test_offer_then_answer_flow() -> None:
    offer = make_sdp(
        "192.0.2.1",
        [make_media(4000, [PCMU, PCMA, DTMF], fmtps=[Fmtp("101", "0-16")], ptime=20)],
        sess_id=1,
    )
    received = parse_sdp(offer.encode())
    answer = make_answer(received, "192.0.2.2", port=5000, codecs=[PCMA, DTMF], sess_id=7)
    back = parse_sdp(answer.encode())
    (media,) = back.media
    assert media.codecs() == (PCMA, DTMF)
    assert media.fmtp(101) == Fmtp("101", "0-16")
    assert back.direction_for(media) == "sendrecv"
    assert back.connection_for(media) == Connection("IN", "IP4", "192.0.2.2")
    reoffer = offer.with_media(0, offer.media[0].with_direction("sendonly")).with_next_version()
    reanswer = make_answer(
        parse_sdp(str(reoffer)), "192.0.2.2", port=5000, codecs=[PCMA], sess_id=7, sess_version=1
    )
    assert reanswer.media[0].direction == "recvonly"


@given(st.text(alphabet=" \t0a²٣\r", max_size=12))
def test_split_fields_and_parse_uint_match_their_grammar(text: str) -> None:
    # split_fields: runs of SP/HTAB separate fields; parse_uint: 1 to 20 ASCII digits.
    assert split_fields(text) == [f for f in re.split(r"[ \t]+", text) if f]
    if re.fullmatch(r"[0-9]{1,20}", text):
        assert parse_uint(text, "n") == int(text)
    else:
        with pytest.raises(SdpParseError):
            parse_uint(text, "n")
    assert parse_uint("9" * 20, "n") == 10**20 - 1
    with pytest.raises(SdpParseError):
        parse_uint("1" * 21, "n")


def test_rtpmap_view_shares_parsed_values() -> None:
    media = MediaDescription(
        "audio", 4000, "RTP/AVP", ("0", "96"), attributes=(Attribute("rtpmap", "96 opus/48000/2"),)
    )
    again = attrs.evolve(media, port=4002)
    assert media.rtpmap(96) == RtpMap(96, "opus", 48000, 2)
    assert media.rtpmap(96) is again.rtpmap(96)
    assert media.rtpmap(0) == RtpMap(0, "PCMU", 8000, 1)


_PTS = st.sampled_from([0, 8, 18, 96, 97, 101])
_MAP_ATTRS = st.builds(
    lambda pt, name, rate: Attribute("rtpmap", f"{pt} {name}/{rate}"),
    _PTS,
    st.sampled_from(["PCMU", "pcma", "opus", "telephone-event", "G729"]),
    st.sampled_from([8000, 48000]),
)
_OTHER_ATTRS = st.one_of(
    st.builds(lambda pt, p: Attribute("fmtp", f"{pt} {p}"), _PTS, st.sampled_from(["0-16", "a=1"])),
    st.just(Attribute("rtpmap", "malformed")),
    st.just(Attribute("fmtp", "")),
    st.sampled_from(DIRECTIONS).map(Attribute),
)


@given(
    st.lists(_PTS, min_size=1, max_size=5),
    st.lists(st.one_of(_MAP_ATTRS, _OTHER_ATTRS), max_size=8),
    st.lists(_MAP_ATTRS.map(lambda a: RtpMap.parse(a.value or "")), max_size=3),
)
def test_answer_media_matches_the_per_payload_type_views(
    pts: list[int], attrs_: list[Attribute], supported: list[RtpMap]
) -> None:
    offer = MediaDescription(
        "audio", 4000, "RTP/AVP", tuple(str(pt) for pt in pts), attributes=tuple(attrs_)
    )
    answer = answer_media(offer, supported, port=5000)
    expected = [
        m
        for pt in offer.payload_types
        if (m := offer.rtpmap(pt)) is not None and any(codecs_match(m, s) for s in supported)
    ]
    if not expected:
        assert answer.port == 0
        return
    assert answer.formats == tuple(str(m.payload_type) for m in expected)
    assert answer.rtpmaps() == tuple(expected)
    wanted = [f for f in (offer.fmtp(m.payload_type) for m in expected) if f is not None]
    assert answer.fmtps() == tuple(wanted)


def test_serialization_is_kept_and_derived_copies_serialize_afresh() -> None:
    sdp = make_sdp("192.0.2.1", [make_media(4000, [RtpMap(0, "PCMU", 8000)])], sess_id=1)
    text = str(sdp)
    assert str(sdp) is text
    assert sdp.encode() == text.encode()
    assert attrs.fields(SessionDescription)[-1].name == "unknown_lines"  # no hidden field
    moved = sdp.with_media(0, sdp.media[0].with_port(4002))
    assert "m=audio 4002 " in str(moved)
    assert "m=audio 4000 " in str(sdp)
    assert moved.with_next_version().origin.sess_version == "1"


def _sdp_with(media_line: str, extra: str = "") -> str:
    head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    return f"{head}{media_line}\r\n{extra}"


@pytest.mark.parametrize(
    "line",
    [
        "m=audio 65536 RTP/AVP 0",
        "m=audio 99999999 RTP/AVP 0",
        "m=audio 65534/2 RTP/AVP 0",  # second stream's RTP at 65536
        "m=audio 49170/0 RTP/AVP 0",
        "m=application 65535/2 UDP/BFCP *",
    ],
)
def test_media_ports_outside_0_65535_are_parse_errors(line: str) -> None:
    """Issue 10: a port range from m=<port>/<count> could run past 65535 unchecked.

    Only the first port was range-checked, so ``m=audio 65534/2`` (RTP streams at 65534
    and 65536) parsed, and a socket layer computing the later ports would fail.
    """
    with pytest.raises(SdpParseError):
        parse_sdp(_sdp_with(line))


@pytest.mark.parametrize(
    ("line", "count"),
    [
        ("m=audio 0 RTP/AVP 0", None),
        ("m=audio 65535 RTP/AVP 0", None),
        ("m=video 49170/2 RTP/AVP 31", 2),
        ("m=audio 65532/2 RTP/AVP 0", 2),
        ("m=application 65534/2 UDP/BFCP *", 2),
    ],
)
def test_media_ports_inside_the_range_parse(line: str, count: int | None) -> None:
    media = parse_sdp(_sdp_with(line)).media[0]
    assert media.port_count == count


def test_rtcp_port_above_65535_is_refused() -> None:
    """Issue 10: ``a=rtcp:70000`` parsed to a port no socket can use."""
    with pytest.raises(SdpParseError):
        Rtcp.parse("70000")
    with pytest.raises(SdpParseError):
        Rtcp.parse("65536 IN IP4 192.0.2.1")
    assert Rtcp.parse("65535").port == 65535
    media = parse_sdp(_sdp_with("m=audio 4000 RTP/AVP 0", "a=rtcp:65536\r\n")).media[0]
    assert media.rtcp is None  # malformed a=rtcp reads as absent


@pytest.mark.parametrize(
    ("address", "literal"),
    [
        ("192.0.2.1", True),
        ("0.0.0.0", True),
        ("2001:db8::1", True),
        ("::", True),
        ("pbx.example.com", False),
        ("localhost", False),
        ("192.0.2", False),
        ("192.0.2.1.example", False),
        ("", False),
        ("[2001:db8::1]", False),
    ],
)
def test_is_ip_literal(address: str, literal: bool) -> None:
    assert is_ip_literal(address) is literal


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("IN IP4 192.0.2.1", True),
        ("IN IP6 2001:db8::1", True),
        ("IN IP4 224.2.1.1/127", True),
        ("IN IP4 pbx.example.com", False),
        ("IN IP6 pbx.example.com", False),
        ("IN IP4 2001:db8::1", False),
        ("IN IP6 192.0.2.1", False),
        ("ATM NSAP 47.0005.80.ffe100", False),
    ],
)
def test_connection_is_ip_literal(text: str, literal: bool) -> None:
    sdp = parse_sdp(f"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc={text}\r\nt=0 0\r\n")
    assert sdp.connection is not None
    assert sdp.connection.is_ip_literal is literal


@given(st.ip_addresses())
def test_every_ip_address_text_is_a_literal(address: object) -> None:
    assert is_ip_literal(str(address))
    family = "IP6" if ":" in str(address) else "IP4"
    assert Connection("IN", family, str(address)).is_ip_literal


@given(st.text(max_size=60), st.sampled_from(["IP4", "IP6", "ip4", "X"]))
def test_is_ip_literal_never_raises(text: str, family: str) -> None:
    verdict = is_ip_literal(text)
    assert Connection("IN", family, text).is_ip_literal in (False, verdict)


@given(
    st.lists(_MAP_ATTRS.map(lambda a: RtpMap.parse(a.value or "")), min_size=1, max_size=3),
    st.one_of(st.none(), st.integers(10, 60)),
    st.one_of(st.none(), st.sampled_from(DIRECTIONS)),
    st.booleans(),
)
def test_make_media_lines_are_the_plain_attribute_lines(
    codecs: list[RtpMap], ptime: int | None, direction: str | None, mux: bool
) -> None:
    """make_media shares its Attribute values across calls; the lines stay what they were."""
    media = make_media(4000, codecs, ptime=ptime, direction=direction, rtcp_mux=mux)
    expected = [Attribute("rtpmap", str(c)) for c in codecs]
    expected += [Attribute("ptime", str(ptime))] if ptime is not None else []
    expected += [Attribute("rtcp-mux")] if mux else []
    expected += [Attribute(direction)] if direction is not None else []
    assert media.attributes == tuple(expected)
    assert media.formats == tuple(str(c.payload_type) for c in codecs)
    again = make_media(4000, codecs, ptime=ptime, direction=direction, rtcp_mux=mux)
    assert again == media
    assert all(a is b for a, b in zip(again.attributes, media.attributes, strict=True))
    assert codecs[0] == RtpMap.parse(str(codecs[0]))  # the cached line changes no equality


@given(st.lists(st.text("ab:=/ 0", min_size=0, max_size=10), min_size=1, max_size=4))
def test_attribute_lines_parse_the_same_from_the_memo(values: list[str]) -> None:
    """a= lines are memoised per text: the second parse gives the same values (shared),
    and a malformed line (empty name) is refused every time."""
    body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    body += "".join(f"a={v}\r\n" for v in values)
    lines = [v.rstrip(" \t\r") for v in values]
    if any(not line.partition(":")[0] for line in lines):
        for _ in range(2):
            with pytest.raises(SipParseError):
                parse_sdp(body)
        return
    first, second = parse_sdp(body), parse_sdp(body)
    assert first == second
    expected = tuple(
        Attribute(name, rest if colon else None)
        for line in lines
        for name, colon, rest in [line.partition(":")]
    )
    assert first.media[0].attributes == expected
    assert all(
        a is b for a, b in zip(first.media[0].attributes, second.media[0].attributes, strict=True)
    )


@given(media_descriptions(), st.integers(min_value=0, max_value=65535))
def test_with_port_keeps_views_that_do_not_depend_on_the_port(
    media: MediaDescription, port: int
) -> None:
    # with_port shares the cached payload types, rtpmaps and lines of the original: the
    # copy must read and serialize exactly as one built from scratch on that port.
    _ = media.payload_types, media.rtpmaps(), str(media)  # fill the caches
    moved = media.with_port(port)
    fresh = attrs.evolve(media, port=port)
    assert moved == fresh
    assert str(moved) == str(fresh)
    assert moved.payload_types == fresh.payload_types
    assert moved.rtpmaps() == fresh.rtpmaps()
