"""SDES-SRTP in offer/answer (RFC 4568): offers per mode, answers, key pairing, refusals."""

from __future__ import annotations

import base64
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_rtp_core import SrtpKeyParams
from rvoip_session_core._media_manager import signalled_over_tls
from rvoip_session_core._offer_answer import (
    OFFERED_SUITES,
    SRTP_MODES,
    SdpNegotiationError,
    SrtpMode,
    build_answer,
    build_offer,
    negotiated,
    usable_crypto,
    with_direction,
)
from rvoip_sip_core import SessionDescription, parse_sdp

KEY = base64.b64encode(bytes(range(30))).decode()
KEY2 = base64.b64encode(bytes(range(30, 60))).decode()


def _offer(proto: str, *crypto: str) -> SessionDescription:
    lines = "".join(f"a=crypto:{c}\r\n" for c in crypto)
    return parse_sdp(
        "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio 40000 {proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=rtpmap:101 telephone-event/8000\r\n{lines}"
    )


def _seeded(seed: int) -> random.Random:
    return random.Random(seed)


def test_offer_off_has_no_crypto_and_plain_profile() -> None:
    offer = build_offer("127.0.0.1", 30000, sess_id=1)
    assert offer.media[0].proto == "RTP/AVP"
    assert not offer.media[0].has_attribute("crypto")


@pytest.mark.parametrize(("mode", "proto"), [("optional", "RTP/AVP"), ("required", "RTP/SAVP")])
def test_offer_with_srtp_has_both_suites_with_fresh_keys(mode: SrtpMode, proto: str) -> None:
    first = build_offer("127.0.0.1", 30000, sess_id=1, srtp=mode)
    second = build_offer("127.0.0.1", 30000, sess_id=1, srtp=mode)
    media = first.media[0]
    assert media.proto == proto
    lines = usable_crypto(media)
    assert [(k.suite, k.tag) for k in lines] == list(OFFERED_SUITES)
    assert lines[0].master_key != lines[1].master_key  # one key per line
    assert usable_crypto(second.media[0])[0].master_key != lines[0].master_key  # per call
    assert parse_sdp(first.encode()) == first


def test_required_offer_answered_by_required_peer_pairs_the_keys() -> None:
    offer = build_offer("127.0.0.1", 30000, sess_id=1, srtp="required")
    answer = build_answer(offer, "127.0.0.1", 31000, sess_id=2, srtp="required")
    media = answer.media[0]
    assert media.proto == "RTP/SAVP"
    (ours,) = usable_crypto(media)
    offered = usable_crypto(offer.media[0])[0]
    assert (ours.tag, ours.suite) == (1, "AES_CM_128_HMAC_SHA1_80")
    assert ours.master_key != offered.master_key
    callee = negotiated(answer, offer, answer_is_local=True)
    caller = negotiated(offer, answer, answer_is_local=False)
    assert callee.srtp is not None
    assert caller.srtp is not None
    assert callee.srtp.local == caller.srtp.remote == ours
    assert caller.srtp.local == callee.srtp.remote == offered


def test_answer_takes_the_first_supported_line_with_its_tag() -> None:
    offer = _offer(
        "RTP/SAVP",
        f"5 AES_256_CM_HMAC_SHA1_80 inline:{KEY}{KEY[:14]}",  # a suite we lack
        f"7 AES_CM_128_HMAC_SHA1_32 inline:{KEY}|2^31",
        f"8 AES_CM_128_HMAC_SHA1_80 inline:{KEY2}",
    )
    answer = build_answer(offer, "127.0.0.1", 31000, sess_id=2, srtp="optional")
    (ours,) = usable_crypto(answer.media[0])
    assert (ours.tag, ours.suite) == (7, "AES_CM_128_HMAC_SHA1_32")
    result = negotiated(answer, offer, answer_is_local=True)
    assert result.srtp is not None
    assert result.srtp.remote.master_key + result.srtp.remote.master_salt == bytes(range(30))


@pytest.mark.parametrize(
    "crypto",
    [
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4",  # MKI: not supported
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} UNENCRYPTED_SRTP",  # session params
        "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA",  # short key
        f"1 F8_128_HMAC_SHA1_80 inline:{KEY}",
    ],
)
def test_unusable_crypto_lines_are_ignored_and_savp_refused(crypto: str) -> None:
    offer = _offer("RTP/SAVP", crypto)
    with pytest.raises(SdpNegotiationError, match="SRTP") as info:
        build_answer(offer, "127.0.0.1", 31000, sess_id=2, srtp="required")
    assert info.value.status == 488


def test_off_refuses_savp_and_ignores_crypto_in_avp() -> None:
    with pytest.raises(SdpNegotiationError, match="SRTP"):
        build_answer(
            _offer("RTP/SAVP", f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"), "::1", 3, sess_id=2
        )
    offer = _offer("RTP/AVP", f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")
    answer = build_answer(offer, "127.0.0.1", 31000, sess_id=2)
    assert not answer.media[0].has_attribute("crypto")
    assert negotiated(answer, offer, answer_is_local=True).srtp is None


def test_optional_answers_a_crypto_avp_offer_with_srtp_and_a_plain_one_in_clear() -> None:
    offer = _offer("RTP/AVP", f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")
    answer = build_answer(offer, "127.0.0.1", 31000, sess_id=2, srtp="optional")
    assert answer.media[0].proto == "RTP/AVP"
    assert negotiated(answer, offer, answer_is_local=True).srtp is not None
    plain = _offer("RTP/AVP")
    answer = build_answer(plain, "127.0.0.1", 31000, sess_id=2, srtp="optional")
    assert negotiated(answer, plain, answer_is_local=True).srtp is None


def test_required_refuses_a_plain_offer_with_a_reason_naming_srtp() -> None:
    with pytest.raises(SdpNegotiationError, match=r"SRTP is required") as info:
        build_answer(_offer("RTP/AVP"), "127.0.0.1", 31000, sess_id=2, srtp="required")
    assert info.value.status == 488


def test_required_offer_answered_in_clear_fails_naming_srtp() -> None:
    offer = build_offer("127.0.0.1", 30000, sess_id=1, srtp="required")
    plain_answer = build_answer(_offer("RTP/AVP"), "127.0.0.1", 31000, sess_id=2)
    with pytest.raises(SdpNegotiationError, match="SRTP is required but the answer"):
        negotiated(offer, plain_answer, answer_is_local=False)


def test_optional_offer_answered_in_clear_falls_back_to_rtp() -> None:
    offer = build_offer("127.0.0.1", 30000, sess_id=1, srtp="optional")
    answer = build_answer(offer, "127.0.0.1", 31000, sess_id=2)  # an "off" peer
    assert not answer.media[0].has_attribute("crypto")
    assert negotiated(offer, answer, answer_is_local=False).srtp is None


def test_answer_with_a_tag_we_never_offered_fails() -> None:
    offer = build_offer("127.0.0.1", 30000, sess_id=1, srtp="optional")
    answer = _offer("RTP/AVP", f"9 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")
    with pytest.raises(SdpNegotiationError, match="tag 9"):
        negotiated(offer, answer, answer_is_local=False)


def test_reanswer_keeps_our_key_and_a_changed_peer_key_rekeys() -> None:
    """A hold re-INVITE from the peer must not re-key our direction needlessly."""
    offer = _offer("RTP/SAVP", f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")
    first = build_answer(offer, "127.0.0.1", 31000, sess_id=2, srtp="required")
    reoffer = _offer("RTP/SAVP", f"3 AES_CM_128_HMAC_SHA1_80 inline:{KEY2}")
    second = build_answer(
        with_direction(reoffer, "sendonly"),
        "127.0.0.1",
        31000,
        sess_id=2,
        srtp="required",
        previous=first,
    )
    before = negotiated(first, offer, answer_is_local=True).srtp
    after = negotiated(second, reoffer, answer_is_local=True).srtp
    assert before is not None
    assert after is not None
    assert after.local.master_key == before.local.master_key
    assert after.local.tag == 3
    assert after.remote != before.remote


def test_repr_of_negotiated_audio_hides_keys() -> None:
    offer = build_offer("127.0.0.1", 30000, sess_id=1, srtp="required")
    answer = build_answer(offer, "127.0.0.1", 31000, sess_id=2, srtp="required")
    result = negotiated(offer, answer, answer_is_local=False)
    assert result.srtp is not None
    text = repr(result)
    for key in (result.srtp.local, result.srtp.remote):
        assert key.inline_key not in text
        assert key.inline_key[:12] not in text


@given(
    st.sampled_from(SRTP_MODES),
    st.sampled_from(SRTP_MODES),
    st.integers(0, 2**32),
)
def test_any_mode_pair_agrees_or_refuses_and_keys_mirror(
    caller: SrtpMode, callee: SrtpMode, seed: int
) -> None:
    """Property: for every mode pair, either a 488 is raised, or both sides derive the same
    media security, with the caller's local key the callee's remote key and vice versa."""
    rng = _seeded(seed)
    offer = build_offer("127.0.0.1", 30000, sess_id=1, srtp=caller, key_source=rng.randbytes)
    if {caller, callee} == {"required", "off"}:
        with pytest.raises(SdpNegotiationError) as info:
            build_answer(offer, "127.0.0.1", 31000, sess_id=2, srtp=callee)
        assert info.value.status == 488
        return
    answer = build_answer(
        offer, "127.0.0.1", 31000, sess_id=2, srtp=callee, key_source=rng.randbytes
    )
    try:
        a = negotiated(offer, answer, answer_is_local=False)
    except SdpNegotiationError:
        pytest.fail(f"{caller}->{callee}: an answered offer must negotiate")
    b = negotiated(answer, offer, answer_is_local=True)
    secure = caller != "off" and callee != "off"
    assert (a.srtp is not None, b.srtp is not None) == (secure, secure)
    if a.srtp is not None and b.srtp is not None:
        assert a.srtp.local == b.srtp.remote
        assert a.srtp.remote == b.srtp.local
        assert isinstance(a.srtp.local, SrtpKeyParams)


def test_a_crypto_line_answering_a_plain_offer_is_ignored() -> None:
    """baresip's best-effort ``mediaenc=srtp`` puts a=crypto in its answer to any offer.

    Bug found against baresip: our plain offer ("off") got an answer with
    ``a=crypto:1 ...``, and negotiation failed ("matches no offered crypto line"), so the
    call was hung up. baresip then sends plain RTP: the line answers nothing we offered
    and is ignored.
    """
    offer = build_offer("127.0.0.1", 30000, sess_id=1)
    answer = _offer("RTP/AVP", f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")
    assert negotiated(offer, answer, answer_is_local=False).srtp is None


@given(st.text(max_size=120))
def test_usable_crypto_never_raises_on_hostile_lines(line: str) -> None:
    """Any a=crypto text from the network gives usable keys or none, never an exception."""
    clean = line.replace("\r", " ").replace("\n", " ")
    try:
        offer = _offer("RTP/SAVP", clean)
    except Exception:  # the SDP parser refused the whole body: not this function's input
        return
    for key in usable_crypto(offer.media[0]):
        assert len(key.master_key) == 16
        assert len(key.master_salt) == 14


@given(st.binary(min_size=30, max_size=30), st.sampled_from(OFFERED_SUITES), st.integers(0, 2**31))
def test_any_inline_key_round_trips_through_an_answer(
    raw: bytes, suite_tag: tuple[str, int], tag: int
) -> None:
    suite, _ = suite_tag
    inline = base64.b64encode(raw).decode()
    offer = _offer("RTP/SAVP", f"{tag} {suite} inline:{inline}")
    (offered,) = usable_crypto(offer.media[0])
    assert offered.master_key + offered.master_salt == raw
    answer = build_answer(offer, "127.0.0.1", 31000, sess_id=2, srtp="required")
    keys = negotiated(answer, offer, answer_is_local=True).srtp
    assert keys is not None
    assert keys.remote == offered
    assert keys.local.tag == tag


@pytest.mark.parametrize(
    ("target", "headers", "transport", "expected"),
    [
        ("sip:bob@127.0.0.1", None, "UDP", False),
        ("sip:bob@127.0.0.1", None, "TLS", True),
        ("sip:bob@127.0.0.1;transport=tcp", None, "TLS", False),
        ("sips:bob@127.0.0.1", None, "UDP", True),
        ("<sip:bob@127.0.0.1;transport=TLS>", None, "UDP", True),
        ("", (("Via", "SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK1"),), "UDP", True),
        ("", (("v", "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1"),), "TLS", False),
        ("", (("From", "<sip:a@b>"),), "TLS", False),
    ],
)
def test_signalled_over_tls_reads_the_via_or_the_target(
    target: str, headers: tuple[tuple[str, str], ...] | None, transport: str, expected: bool
) -> None:
    assert signalled_over_tls(target, headers, transport) is expected
