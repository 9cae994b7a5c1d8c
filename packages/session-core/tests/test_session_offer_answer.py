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
from rvoip_sip_core import RtpMap, make_media, make_sdp, parse_sdp

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
