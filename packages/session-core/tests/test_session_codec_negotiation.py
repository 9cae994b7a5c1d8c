"""Offer/answer with G.722 and Opus: preference order, fmtp both ways, telephone-event rates."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_session_core import SessionManagerBuilder
from rvoip_session_core._errors import ConfigurationError
from rvoip_session_core._offer_answer import (
    SdpNegotiationError,
    build_answer,
    build_offer,
    negotiated,
    parse_offer,
    usable_codecs,
)
from rvoip_sip_core import parse_sdp

BARESIP_LIKE_OFFER = (
    "v=0\r\n"
    "o=- 1 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 4000 RTP/AVP 96 9 0 8 101\r\n"
    "a=rtpmap:96 opus/48000/2\r\n"
    "a=fmtp:96 stereo=1;sprop-stereo=1;maxaveragebitrate=20000\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
)


def _offer(codecs: list[str]) -> str:
    return str(build_offer("127.0.0.1", 5000, codecs=codecs, sess_id=1))


def test_offer_lists_codecs_in_preference_order_with_fmtp_and_event_rates() -> None:
    """with_codecs order is the m-line order; Opus fmtp per RFC 7587; events at 8000 and 48000."""
    sdp = _offer(["opus", "g722", "PCMU"])
    assert "m=audio 5000 RTP/AVP 111 9 0 101 110" in sdp
    assert "a=rtpmap:111 opus/48000/2" in sdp
    assert "a=fmtp:111 maxplaybackrate=48000;stereo=0;sprop-stereo=0;useinbandfec=1" in sdp
    assert "a=rtpmap:9 G722/8000" in sdp
    assert "a=rtpmap:101 telephone-event/8000" in sdp
    assert "a=rtpmap:110 telephone-event/48000" in sdp
    assert "usedtx" not in sdp


def test_opus_only_offer_has_only_the_48k_event() -> None:
    """No 8 kHz codec offered: no telephone-event/8000 either."""
    sdp = _offer(["opus"])
    assert "m=audio 5000 RTP/AVP 111 110" in sdp
    assert "telephone-event/8000" not in sdp


def test_usable_codecs_is_case_insensitive_and_drops_unknown() -> None:
    """Names in any case; unknown names and repeats are left out."""
    assert usable_codecs(["Opus", "g722", "speex", "OPUS", "pcmu"]) == ["OPUS", "G722", "PCMU"]


def test_answerer_takes_the_offerers_first_common_codec() -> None:
    """RFC 3264 §6.1: the answer keeps the offer's order; Opus first in the offer wins."""
    offer = parse_offer(BARESIP_LIKE_OFFER)
    answer = build_answer(offer, "127.0.0.1", 6000, codecs=["PCMU", "G722", "opus"], sess_id=2)
    text = str(answer)
    assert "m=audio 6000 RTP/AVP 96 9 0 101" in text
    # RFC 7587 §7.1: our fmtp (what we receive), not the offerer's stereo=1 copied back.
    assert "a=fmtp:96 maxplaybackrate=48000;stereo=0;sprop-stereo=0;useinbandfec=1" in text
    assert "stereo=1" not in text
    result = negotiated(answer, offer, answer_is_local=True)
    assert (result.codec, result.payload_type, result.clock_rate) == ("opus", 96, 48000)
    # The offerer's fmtp is what our encoder follows.
    assert result.remote_fmtp == "stereo=1;sprop-stereo=1;maxaveragebitrate=20000"
    # The only telephone-event offered is at 8000: none matches Opus's clock.
    assert result.dtmf_payload_type is None


def test_answer_without_opus_falls_to_g722() -> None:
    """An answerer that does not do Opus picks G.722 (the offer's next), clock 8000."""
    offer = parse_offer(BARESIP_LIKE_OFFER)
    answer = build_answer(offer, "127.0.0.1", 6000, codecs=["G722", "PCMU"], sess_id=2)
    result = negotiated(answer, offer, answer_is_local=True)
    assert (result.codec, result.payload_type, result.clock_rate) == ("G722", 9, 8000)
    assert result.dtmf_payload_type == 101


def test_offerer_reads_the_answer_fmtp_and_event_at_48k() -> None:
    """rvoip↔rvoip with Opus: each side's encoder follows the other's fmtp; DTMF at 48000."""
    offer = build_offer("127.0.0.1", 5000, codecs=["opus", "PCMU"], sess_id=1)
    answer = build_answer(offer, "127.0.0.1", 6000, codecs=["opus", "PCMU"], sess_id=2)
    mine = negotiated(offer, answer, answer_is_local=False)
    assert (mine.codec, mine.payload_type) == ("opus", 111)
    assert mine.dtmf_payload_type == 110
    assert mine.remote_fmtp is not None
    assert "useinbandfec=1" in mine.remote_fmtp


def test_no_common_codec_is_488() -> None:
    """G.722 only against a PCMA-only offer: nothing common."""
    offer = parse_offer(BARESIP_LIKE_OFFER.replace("96 9 0 8 101", "8"))
    with pytest.raises(SdpNegotiationError) as info:
        build_answer(offer, "127.0.0.1", 6000, codecs=["G722"], sess_id=2)
    assert info.value.status == 488


def test_builder_with_codecs() -> None:
    """with_codecs keeps the order, any case; unknown names are refused; default stays G.711."""
    config = SessionManagerBuilder().with_codecs(["opus", "G722", "pcmu"]).config()
    assert config.preferred_codecs == ("OPUS", "G722", "PCMU")
    assert SessionManagerBuilder().config().preferred_codecs == ("PCMU", "PCMA")
    with pytest.raises(ConfigurationError):
        SessionManagerBuilder().with_codecs(["speex"])


@given(st.lists(st.sampled_from(["opus", "OPUS", "g722", "G722", "pcmu", "PCMA", "x"]), max_size=8))
def test_any_codec_list_builds_a_parseable_offer(codecs: list[str]) -> None:
    """Whatever the list, the offer parses and lists each usable codec once, in order."""
    sdp = parse_sdp(_offer(codecs))
    names = [
        m.encoding.upper()
        for pt in sdp.media[0].payload_types
        if (m := sdp.media[0].rtpmap(pt)) is not None and m.encoding != "telephone-event"
    ]
    assert names == usable_codecs(codecs)


@pytest.mark.parametrize("dtmf", [101, 110, 111])
def test_wideband_event_number_never_collides(dtmf: int) -> None:
    """with_dtmf_payload_type(110) once made the 48 kHz telephone-event take 111, Opus's
    own number: every payload type of an offer must be distinct."""
    sdp = parse_sdp(
        str(
            build_offer(
                "127.0.0.1", 5000, codecs=["opus", "PCMU"], dtmf_payload_type=dtmf, sess_id=1
            )
        )
    )
    pts = list(sdp.media[0].payload_types)
    assert len(pts) == len(set(pts))
    rates = sorted(
        m.clock_rate
        for pt in pts
        if (m := sdp.media[0].rtpmap(pt)) and m.encoding == "telephone-event"
    )
    assert rates == [8000, 48000]


def test_a_g711_endpoint_loads_no_other_codec_library() -> None:
    """Regression (issue 14 merge): negotiating PCMU/PCMA probed every codec, importing
    PyAV (every FFmpeg library) into G.711-only processes: +40 KB of RSS per call in the
    500-call benchmark (a one-off ~20 MB charged to the first calls). Only the codecs asked
    for are probed now, and libopus is found without importing av."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from rvoip_session_core._offer_answer import usable_codecs\n"
        "assert usable_codecs(['PCMU', 'PCMA']) == ['PCMU', 'PCMA']\n"
        "assert 'av' not in sys.modules and 'G722' not in sys.modules, sorted(sys.modules)\n"
        "usable_codecs(['opus'])\n"
        "assert 'av' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
