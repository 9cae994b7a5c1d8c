"""The SDP parser against real SDPs: browsers, PBXes, phones, and the RFC 4475/5118 bodies."""

from __future__ import annotations

from pathlib import Path

import pytest

from rvoip_sip_core._sdp import Connection, Origin, RtpMap, parse_sdp

SDP_FILES = [
    "chrome-webrtc-audio.sdp",
    "chrome-webrtc-video.sdp",
    "firefox-58-webrtc-audio.sdp",
    "firefox-61-webrtc-video.sdp",
    "freeswitch-webrtc-audio.sdp",
    "safari-webrtc-audio-video.sdp",
]

# Messages whose body is (or holds) an SDP.
MESSAGE_FILES = [
    "real-world/asterisk-chan_sip-invite.sip",
    "real-world/audiocodes-mediant1000-invite.sip",
    "real-world/baresip-v3.24-invite-audio-video.sip",
    "real-world/cisco-csco7-200-options-sdp-a.sip",
    "real-world/cisco-csco7-200-options-sdp-b.sip",
    "real-world/dialogic-200ok-invite.sip",
    "real-world/m2tua-invite-gips-codecs.sip",
    "real-world/microsip-3.19.22-invite.sip",
    "real-world/microsip-3.19.8-invite-tls-sdes-srtp.sip",
    "real-world/msc-vc510-200ok-invite.sip",
    "real-world/polycom-spip601-invite-replaces.sip",
    "real-world/sct-dss-200ok-utf8-display-names.sip",
    "real-world/sipjs-0.5-webrtc-invite-chrome-sdp.sip",
    "real-world/sonus-siprec-invite-multipart.sip",
    "real-world/ta612v-invite-g726.sip",
    "real-world/utstarcom-invite-diversion.sip",
    "real-world/vericall-edge-invite-malformed-from.sip",
    "rfc4475/sdp01.dat",
    "rfc4475/inv2543.dat",
    "rfc5118/ipv6-in-sdp.dat",
    "rfc5118/mult-ip-in-sdp.dat",
]


def _body(message: bytes) -> bytes:
    """The part after the first blank line; for multipart, the application/sdp part."""
    ends = [(i, n) for i, n in ((message.find(b"\r\n\r\n"), 4), (message.find(b"\n\n"), 2))]
    pos, size = min((i, n) for i, n in ends if i >= 0)
    body = message[pos + size :]
    if body.startswith(b"--"):
        start = body.index(b"v=0")
        end = body.find(b"\r\n--", start)
        body = body[start : end + 2]
    return body


def _normalized(data: bytes) -> bytes:
    """What a tolerant parse should give back: CRLF lines, no trailing blanks/whitespace."""
    text = data.decode("utf-8", "surrogateescape")
    lines = [line.rstrip(" \t\r") for line in text.split("\n")]
    return "".join(line + "\r\n" for line in lines if line).encode("utf-8", "surrogateescape")


# Where the tolerant reading deliberately differs from the input text.
NORMALIZED_DIFFERENTLY = {
    # o= line missing a field: read as an empty user name.
    "real-world/sct-dss-200ok-utf8-display-names.sip",
    # "s=" without the single space RFC 8866 asks for: written back as "s= ".
    "rfc5118/mult-ip-in-sdp.dat",
}


@pytest.mark.parametrize("name", SDP_FILES)
def test_real_world_sdp_files(corpora: Path, name: str) -> None:
    data = (corpora / "real-world" / "sdp" / name).read_bytes()
    sdp = parse_sdp(data)
    assert sdp.encode() == _normalized(data)
    assert parse_sdp(sdp.encode()) == sdp
    assert sdp.media
    for media in sdp.media:
        if media.proto.endswith("SAVPF"):
            assert media.rtpmaps()


@pytest.mark.parametrize("rel", MESSAGE_FILES)
def test_sdp_bodies_of_messages(corpora: Path, rel: str) -> None:
    data = _body((corpora / rel).read_bytes())
    sdp = parse_sdp(data)
    assert parse_sdp(sdp.encode()) == sdp
    if rel not in NORMALIZED_DIFFERENTLY:
        assert sdp.encode() == _normalized(data)
    assert sdp.media
    for media in sdp.media:
        assert sdp.connection_for(media) is not None


def test_exact_round_trip_of_well_formed_bodies(corpora: Path) -> None:
    for rel in ("real-world/asterisk-chan_sip-invite.sip", "rfc4475/sdp01.dat"):
        data = _body((corpora / rel).read_bytes())
        assert parse_sdp(data).encode() == data
    for name in ("chrome-webrtc-video.sdp", "firefox-58-webrtc-audio.sdp"):
        data = (corpora / "real-world" / "sdp" / name).read_bytes()
        assert parse_sdp(data).encode() == data


def test_known_values(corpora: Path) -> None:
    rw = corpora / "real-world"
    cisco = parse_sdp(_body((rw / "cisco-csco7-200-options-sdp-a.sip").read_bytes()))
    assert cisco.origin == Origin("Cisco-SIPUA", "(null)", "(null)", "IN", "IP4", "192.168.1.100")
    assert cisco.media[0].port == 1

    srtp = parse_sdp(_body((rw / "microsip-3.19.8-invite-tls-sdes-srtp.sip").read_bytes()))
    media = srtp.media[0]
    suites = [c.suite for c in media.crypto()]
    assert suites == [
        "AES_256_CM_HMAC_SHA1_80",
        "AES_256_CM_HMAC_SHA1_32",
        "AES_CM_128_HMAC_SHA1_80",
        "AES_CM_128_HMAC_SHA1_32",
    ]
    assert len(media.crypto()[0].key_params[0].key_and_salt()) == 46  # 32-byte key + 14-byte salt
    assert len(media.crypto()[2].key_params[0].key_and_salt()) == 30
    assert media.rtcp is not None
    assert media.rtcp.port == 4001
    assert srtp.get_attribute("X-nat") is not None
    assert [b.type for b in media.bandwidths] == ["TIAS"]

    ta = parse_sdp(_body((rw / "ta612v-invite-g726.sip").read_bytes()))
    # Payload type 101 is mapped twice; the first mapping wins for lookups.
    assert ta.media[0].rtpmap(101) == RtpMap(101, "telephone-event", 8000)
    assert ta.media[0].fmtp(18) is not None

    baresip = parse_sdp(_body((rw / "baresip-v3.24-invite-audio-video.sip").read_bytes()))
    assert [m.media for m in baresip.media] == ["audio", "video"]
    assert baresip.media[0].ptime == 20.0
    assert baresip.media[1].fmtp(97) is not None

    sipjs = parse_sdp(_body((rw / "sipjs-0.5-webrtc-invite-chrome-sdp.sip").read_bytes()))
    assert sipjs.media[0].rtcp_mux
    assert sipjs.get_attribute("msid-semantic") is not None
    assert sipjs.attribute_values("msid-semantic") == (" WMS iAR3IFaSOkZ5FIEfztgAwWF9xUvbq02PCVKC",)

    v6 = parse_sdp(_body((corpora / "rfc5118" / "mult-ip-in-sdp.dat").read_bytes()))
    assert v6.connection is None
    assert v6.connection_for(v6.media[1]) == Connection("IN", "IP6", "2001:db8::1")
    assert v6.session_name == ""

    ff = parse_sdp((rw / "sdp" / "firefox-58-webrtc-audio.sdp").read_bytes())
    opus = ff.media[0].rtpmap(109)
    assert opus == RtpMap(109, "opus", 48000, 2)
    fmtp = ff.media[0].fmtp(109)
    assert fmtp is not None
    assert "maxplaybackrate" in fmtp.parameters()
