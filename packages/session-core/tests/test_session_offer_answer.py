"""Tests of RFC 3264 offer/answer for the audio stream."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_session_core._offer_answer import (
    SdpNegotiationError,
    audio_direction,
    build_answer,
    build_offer,
    negotiated,
    parse_offer,
    with_direction,
)
from rvoip_sip_core import RtpMap, SessionDescription, make_media, make_sdp, parse_sdp

OFFER = (
    "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 8 0 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n"
)


def test_offer_lists_our_codecs_in_order_with_telephone_event() -> None:
    offer = build_offer("127.0.0.1", 30000, codecs=["PCMA", "PCMU"], sess_id=5)
    text = str(offer)
    assert "m=audio 30000 RTP/AVP 8 0 101\r\n" in text
    assert "a=rtpmap:101 telephone-event/8000\r\n" in text
    assert "a=fmtp:101 0-16\r\n" in text
    assert "c=IN IP4 127.0.0.1\r\n" in text
    assert "a=sendrecv\r\n" in text
    assert parse_sdp(offer.encode()) == offer


def test_answer_keeps_offer_order_and_numbers() -> None:
    offer = parse_sdp(OFFER)
    answer = build_answer(offer, "127.0.0.1", 31000, codecs=["PCMU", "PCMA"], sess_id=9)
    media = answer.media[0]
    assert media.port == 31000
    assert media.formats == ("8", "0", "96")
    assert media.fmtp(96) is not None
    assert media.direction == "sendrecv"
    result = negotiated(answer, offer, answer_is_local=True)
    assert (result.codec, result.payload_type, result.dtmf_payload_type) == ("PCMA", 8, 96)
    assert result.remote_address == ("127.0.0.1", 40000)
    assert result.send
    assert result.receive


def test_answer_drops_codecs_we_do_not_have() -> None:
    offer = parse_sdp(OFFER)
    answer = build_answer(offer, "127.0.0.1", 31000, codecs=["PCMU"], sess_id=9)
    assert answer.media[0].formats == ("0", "96")


def test_nothing_common_is_488() -> None:
    offer = make_sdp(
        "127.0.0.1",
        [make_media(4000, [RtpMap(18, "G729", 8000), RtpMap(101, "telephone-event", 8000)])],
        sess_id=1,
    )
    with pytest.raises(SdpNegotiationError) as info:
        build_answer(offer, "127.0.0.1", 5000, sess_id=2)
    assert info.value.status == 488


def test_port_zero_and_other_streams_are_answered_with_port_zero() -> None:
    video = make_media(5002, [RtpMap(96, "H264", 90000)], media="video")
    dead = make_media(0, [RtpMap(0, "PCMU", 8000)])
    live = make_media(5004, [RtpMap(0, "PCMU", 8000)])
    offer = make_sdp("127.0.0.1", [video, dead, live], sess_id=1)
    answer = build_answer(offer, "127.0.0.1", 6000, sess_id=2)
    assert [m.port for m in answer.media] == [0, 0, 6000]
    assert [m.media for m in answer.media] == ["video", "audio", "audio"]
    result = negotiated(answer, offer, answer_is_local=True)
    assert result.remote_address == ("127.0.0.1", 5004)


def test_hold_offer_is_sendonly_and_answered_recvonly() -> None:
    offer = build_offer("127.0.0.1", 30000, sess_id=1)
    hold = with_direction(offer, "sendonly")
    assert audio_direction(hold) == "sendonly"
    assert hold.origin.sess_version == "1"
    answer = build_answer(hold, "127.0.0.1", 31000, sess_id=2)
    assert audio_direction(answer) == "recvonly"
    ours = negotiated(hold, answer, answer_is_local=False)
    theirs = negotiated(answer, hold, answer_is_local=True)
    assert (ours.send, ours.receive, ours.direction) == (True, False, "sendonly")
    assert (theirs.send, theirs.receive, theirs.direction) == (False, True, "recvonly")
    # Held while we hold too: inactive.
    inactive = build_answer(hold, "127.0.0.1", 31000, direction="sendonly", sess_id=2)
    assert audio_direction(inactive) == "inactive"


def test_resume_returns_to_sendrecv() -> None:
    hold = with_direction(build_offer("127.0.0.1", 30000, sess_id=1), "sendonly")
    resumed = with_direction(hold, "sendrecv")
    assert audio_direction(resumed) == "sendrecv"
    assert resumed.origin.sess_version == "2"


def test_answer_with_only_telephone_event_is_refused() -> None:
    offer = parse_sdp(OFFER)
    answer = make_sdp(
        "127.0.0.1", [make_media(7000, [RtpMap(96, "telephone-event", 8000)])], sess_id=3
    )
    with pytest.raises(SdpNegotiationError):
        negotiated(offer, answer, answer_is_local=False)


def test_malformed_sdp_is_400() -> None:
    with pytest.raises(SdpNegotiationError) as info:
        parse_offer(b"hello")
    assert info.value.status == 400


CODECS = {"PCMU": (0, 8000), "PCMA": (8, 8000), "G729": (18, 8000), "GSM": (3, 8000)}


@given(
    st.permutations(list(CODECS)).flatmap(
        lambda names: st.tuples(
            st.just(names), st.integers(1, 4), st.lists(st.integers(96, 127), unique=True)
        )
    ),
    st.lists(st.sampled_from(["PCMU", "PCMA"]), min_size=1, max_size=2, unique=True),
)
def test_answer_is_the_offer_order_intersection(
    offer_spec: tuple[list[str], int, list[int]], ours: list[str]
) -> None:
    names, count, dynamic = offer_spec
    offered = names[:count]
    maps = [RtpMap(CODECS[n][0], n, CODECS[n][1]) for n in offered]
    if dynamic:
        maps.append(RtpMap(dynamic[0], "telephone-event", 8000))
    offer = make_sdp("127.0.0.1", [make_media(4000, maps)], sess_id=1)
    common = [n for n in offered if n in ours]
    if not common:
        with pytest.raises(SdpNegotiationError):
            build_answer(offer, "127.0.0.1", 5000, codecs=ours, sess_id=2)
        return
    answer = build_answer(offer, "127.0.0.1", 5000, codecs=ours, sess_id=2)
    expected = [str(CODECS[n][0]) for n in common] + [str(d) for d in dynamic[:1]]
    assert list(answer.media[0].formats) == expected
    result = negotiated(offer, answer, answer_is_local=False)
    assert result.codec == common[0]
    assert result.dtmf_payload_type == (dynamic[0] if dynamic else None)


def _offer(media: str, connection: str = "IN IP4 192.0.2.7") -> str:
    return (
        f"v=0\r\no=peer 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc={connection}\r\nt=0 0\r\n"
        f"{media}\r\na=rtpmap:0 PCMU/8000\r\n"
    )


@pytest.mark.parametrize("proto", ["RTP/SAVP", "RTP/SAVPF", "UDP/TLS/RTP/SAVP"])
def test_a_secure_offer_is_never_answered_in_clear(proto: str) -> None:
    """Issue 10: an RTP/SAVP offer was answered RTP/SAVP with no a=crypto.

    The peer asked for SRTP; the answer claimed the secure profile and the media plane
    then sent plain RTP. Calls have no SRTP yet, so such a stream is rejected (port 0)
    and an offer with nothing else gets 488 naming the reason.
    """
    offer = parse_sdp(
        _offer(f"m=audio 40000 {proto} 0", "IN IP4 192.0.2.7") + "a=crypto:1 "
        "AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
    )
    with pytest.raises(SdpNegotiationError) as caught:
        build_answer(offer, "127.0.0.1", 31000, sess_id=1)
    assert caught.value.status == 488
    assert "SRTP" in str(caught.value)


def test_a_secure_stream_is_rejected_and_a_plain_one_taken() -> None:
    text = _offer("m=audio 40000 RTP/SAVP 0") + "m=audio 40002 RTP/AVP 0\r\n"
    answer = build_answer(parse_sdp(text), "127.0.0.1", 31000, sess_id=1)
    assert [(m.port, m.proto) for m in answer.media] == [(0, "RTP/SAVP"), (31000, "RTP/AVP")]
    result = negotiated(answer, parse_sdp(text), answer_is_local=True)
    assert result.remote_address == ("192.0.2.7", 40002)


@pytest.mark.parametrize("port", [65535])
def test_a_port_without_room_for_rtcp_is_refused(port: int) -> None:
    """Issue 10: ``m=audio 65535`` reached the RTP socket, whose RTCP port was 65536.

    rtp-core sends RTCP to port + 1 (RFC 3550 §11), and sendto() to 65536 raises
    OverflowError in the media task. The stream is refused (488 when nothing is left).
    """
    offer = parse_sdp(_offer(f"m=audio {port} RTP/AVP 0"))
    with pytest.raises(SdpNegotiationError) as caught:
        build_answer(offer, "127.0.0.1", 31000, sess_id=1)
    assert caught.value.status == 488
    assert "RTCP" in str(caught.value)


@pytest.mark.parametrize("connection", ["IN IP4 pbx.example.com", "IN IP4 localhost", "IN IP4 ::1"])
def test_a_host_name_in_c_is_refused_not_resolved(connection: str) -> None:
    """Issue 10: a host name in c= went to the media plane, to be resolved per packet.

    RFC 8866 §5.7 allows an FQDN, but resolving attacker-chosen names on the call path
    blocks it and leaks the lookup. Only IP literals (of the c= address type) are used.
    """
    offer = parse_sdp(_offer("m=audio 40000 RTP/AVP 0", connection))
    with pytest.raises(SdpNegotiationError) as caught:
        build_answer(offer, "127.0.0.1", 31000, sess_id=1)
    assert caught.value.status == 488
    assert "not an IP literal" in str(caught.value)


@pytest.mark.parametrize(
    ("media", "connection", "reason"),
    [
        ("m=audio 65535 RTP/AVP 0", "IN IP4 192.0.2.7", "RTCP"),
        ("m=audio 40000 RTP/SAVP 0", "IN IP4 192.0.2.7", "SRTP"),
        ("m=audio 40000 RTP/AVP 0", "IN IP4 media.example.com", "IP literal"),
    ],
)
def test_an_unusable_remote_answer_fails_negotiation(
    media: str, connection: str, reason: str
) -> None:
    """The same checks apply to the answer to our offer (and to a remote offer we answered)."""
    local = build_offer("127.0.0.1", 30000, sess_id=5)
    remote = parse_sdp(_offer(media, connection))
    with pytest.raises(SdpNegotiationError) as caught:
        negotiated(local, remote, answer_is_local=False)
    assert caught.value.status == 488
    assert reason in str(caught.value)


def test_hold_address_and_ipv6_literals_still_work() -> None:
    local = build_offer("127.0.0.1", 30000, sess_id=5)
    held = negotiated(
        local, parse_sdp(_offer("m=audio 40000 RTP/AVP 0", "IN IP4 0.0.0.0")), answer_is_local=False
    )
    assert held.remote_address is None
    v6 = negotiated(
        local,
        parse_sdp(_offer("m=audio 40000 RTP/AVPF 0", "IN IP6 2001:db8::7")),
        answer_is_local=False,
    )
    assert v6.remote_address == ("2001:db8::7", 40000)


def test_an_offer_of_a_shape_answered_before_gets_the_same_answer_on_its_own_port() -> None:
    # build_answer keeps its answer to each offered stream shape (a UAS sees the same few
    # offers again and again): the kept answer must be what a first answer would be.
    from rvoip_session_core import _offer_answer

    def second_call() -> SessionDescription:
        offer = parse_sdp(OFFER.replace("40000", "40002"))
        return build_answer(offer, "127.0.0.2", 31002, codecs=["PCMU", "PCMA"], sess_id=2)

    first = build_answer(parse_sdp(OFFER), "127.0.0.1", 31000, codecs=["PCMU", "PCMA"], sess_id=1)
    again = second_call()
    _offer_answer._PLAIN_ANSWERS.clear()
    fresh = second_call()
    assert again == fresh
    assert str(again) == str(fresh)
    assert first.media[0].port == 31000
    assert again.media[0].port == 31002
    # Another shape (a different direction, codec list or attribute) is answered afresh.
    held = build_answer(
        parse_sdp(OFFER + "a=sendonly\r\n"), "127.0.0.1", 31004, codecs=["PCMU", "PCMA"], sess_id=3
    )
    assert held.media[0].direction == "recvonly"
    only_pcmu = build_answer(parse_sdp(OFFER), "127.0.0.1", 31006, codecs=["PCMU"], sess_id=4)
    assert only_pcmu.media[0].formats == ("0", "96")
    ptime = build_answer(
        parse_sdp(OFFER), "127.0.0.1", 31008, codecs=["PCMU", "PCMA"], sess_id=5, ptime_ms=30
    )
    assert ptime.media[0].ptime == 30


def test_the_kept_answers_are_bounded() -> None:
    from rvoip_session_core import _offer_answer

    for n in range(3 * _offer_answer._PLAIN_ANSWERS_LIMIT):
        offer = parse_sdp(OFFER + f"a=label:{n}\r\n")
        build_answer(offer, "127.0.0.1", 31000, codecs=["PCMU"], sess_id=n)
        assert len(_offer_answer._PLAIN_ANSWERS) <= _offer_answer._PLAIN_ANSWERS_LIMIT


def test_a_large_offered_stream_is_answered_without_being_kept() -> None:
    from rvoip_session_core import _offer_answer

    _offer_answer._PLAIN_ANSWERS.clear()
    offer = parse_sdp(OFFER + "a=label:" + "x" * 3000 + "\r\n")
    answer = build_answer(offer, "127.0.0.1", 31000, codecs=["PCMU"], sess_id=1)
    assert answer.media[0].formats == ("0", "96")
    assert not _offer_answer._PLAIN_ANSWERS


_FORMATS = st.sampled_from(["0", "8", "9", "18", "96", "101", "111", "13", "x"])
_LINES = st.sampled_from(
    [
        "a=rtpmap:96 telephone-event/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:96 PCMU/8000",
        "a=fmtp:101 0-15",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=ptime:30",
        "a=sendonly",
        "a=recvonly",
        "a=inactive",
        "a=rtcp-mux",
        "a=label:1",
    ]
)


@given(
    formats=st.lists(_FORMATS, min_size=1, max_size=6, unique=True),
    lines=st.lists(_LINES, max_size=6),
    session_direction=st.sampled_from(["", "a=sendonly\r\n", "a=inactive\r\n"]),
    direction=st.sampled_from(["sendrecv", "sendonly", "inactive"]),
    codecs=st.sampled_from([("PCMU", "PCMA"), ("PCMA",), ("G722", "PCMU"), ("OPUS", "PCMU")]),
)
def test_a_kept_answer_is_always_the_answer_built_afresh(
    formats: list[str],
    lines: list[str],
    session_direction: str,
    direction: str,
    codecs: tuple[str, ...],
) -> None:
    # The memo is keyed on what the answer depends on: for any offered stream, the answer
    # reused on another port (or the refusal) is exactly what building it anew gives.
    from rvoip_session_core import _offer_answer

    def answer(media_port: int, port: int) -> SessionDescription | str:
        text = (
            "v=0\r\no=peer 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n"
            f"{session_direction}m=audio {media_port} RTP/AVP {' '.join(formats)}\r\n"
            + "".join(line + "\r\n" for line in lines)
        )
        try:
            return build_answer(
                parse_sdp(text), "127.0.0.1", port, codecs=codecs, direction=direction, sess_id=1
            )
        except SdpNegotiationError as exc:
            return f"{exc.status} {exc}"

    _offer_answer._PLAIN_ANSWERS.clear()
    answer(40000, 31000)  # kept (when usable)
    reused = answer(40002, 31002)
    _offer_answer._PLAIN_ANSWERS.clear()
    fresh = answer(40002, 31002)
    assert reused == fresh
    assert str(reused) == str(fresh)
