"""SDES-SRTP: a=crypto parsing and generation, protect/unprotect with both suites."""

from __future__ import annotations

import base64
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_rtp_core import (
    SRTP_SUITES,
    RtcpReceiverReport,
    SrtpContext,
    SrtpError,
    SrtpKeyParams,
    encode_rtp,
)

KEY = bytes(range(16))
SALT = bytes(range(100, 114))
INLINE = base64.b64encode(KEY + SALT).decode()


def test_parse_crypto_attribute() -> None:
    p = SrtpKeyParams.from_crypto_attribute(f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE}")
    assert (p.tag, p.suite, p.master_key, p.master_salt) == (1, SRTP_SUITES[0], KEY, SALT)
    assert p.inline_key == INLINE
    assert p.to_crypto_attribute() == f"1 AES_CM_128_HMAC_SHA1_80 inline:{INLINE}"


def test_parse_crypto_attribute_with_lifetime_mki_and_session_params() -> None:
    value = f"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{INLINE}|2^20|1:4 KDR=1"
    p = SrtpKeyParams.from_crypto_attribute(value)
    assert (p.tag, p.suite, p.master_key) == (2, "AES_CM_128_HMAC_SHA1_32", KEY)
    assert p.to_crypto_attribute().endswith(" KDR=1")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1 AES_CM_128_HMAC_SHA1_80", "malformed crypto attribute"),
        (f"x AES_CM_128_HMAC_SHA1_80 inline:{INLINE}", "malformed crypto tag"),
        (f"1 F8_128_HMAC_SHA1_80 inline:{INLINE}", "unsupported SRTP crypto suite"),
        ("1 AES_CM_128_HMAC_SHA1_80 uri:foo", "must be inline"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!", "not valid base64"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA", "expected 30"),
    ],
)
def test_crypto_attribute_errors(value: str, message: str) -> None:
    with pytest.raises(SrtpError, match=message):
        SrtpKeyParams.from_crypto_attribute(value)


@given(st.sampled_from(SRTP_SUITES), st.integers(0, 2**31), st.integers(1, 99))
def test_generate_round_trips_through_attribute(suite: str, seed: int, tag: int) -> None:
    params = SrtpKeyParams.generate(random.Random(seed).randbytes, suite, tag)
    assert SrtpKeyParams.from_crypto_attribute(params.to_crypto_attribute()) == params


@pytest.mark.parametrize("suite", SRTP_SUITES)
def test_protect_unprotect_rtp_and_rtcp(suite: str) -> None:
    a_key = SrtpKeyParams.generate(random.Random(1).randbytes, suite)
    b_key = SrtpKeyParams.generate(random.Random(2).randbytes, suite)
    alice = SrtpContext(a_key, b_key)
    bob = SrtpContext(b_key, a_key)
    rtp = encode_rtp(0, 1000, 5000, 0x1234, b"audio" * 32)
    protected = alice.protect_rtp(rtp)
    assert len(protected) == len(rtp) + (10 if suite.endswith("80") else 4)
    assert protected[12:] != rtp[12:]
    assert bob.unprotect_rtp(protected) == rtp
    with pytest.raises(SrtpError, match="unprotect"):
        bob.unprotect_rtp(protected)  # replay
    rtcp = RtcpReceiverReport(0x1234).encode()
    assert bob.unprotect_rtcp(alice.protect_rtcp(rtcp)) == rtcp
    tampered = bytearray(alice.protect_rtp(encode_rtp(0, 1001, 5160, 0x1234, b"x" * 40)))
    tampered[20] ^= 1
    with pytest.raises(SrtpError):
        bob.unprotect_rtp(bytes(tampered))
    with pytest.raises(SrtpError):
        alice.unprotect_rtp(alice.protect_rtp(encode_rtp(0, 7, 0, 0x99, b"own key")))


@given(st.binary(max_size=64))
def test_unprotect_garbage_raises_only_srtp_error(data: bytes) -> None:
    key = SrtpKeyParams(SRTP_SUITES[0], KEY, SALT)
    ctx = SrtpContext(key, key)
    for unprotect in (ctx.unprotect_rtp, ctx.unprotect_rtcp):
        with pytest.raises(SrtpError):
            unprotect(data)
