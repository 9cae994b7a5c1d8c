"""SDES-SRTP: a=crypto parsing and generation, protect/unprotect with both suites."""

from __future__ import annotations

import base64
import random

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_rtp_core import (
    SRTP_SUITES,
    RtcpReceiverReport,
    RtpSessionConfig,
    SrtpContext,
    SrtpError,
    SrtpKeyParams,
    SrtpSessionKeys,
    encode_rtp,
    open_rtp_session,
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


def test_reprs_never_show_key_material() -> None:
    """Keys must not reach logs: every repr that can hold them redacts them.

    ``SrtpKeyParams`` is logged with configs (``RtpSessionConfig.srtp``) and contexts;
    neither the raw bytes nor the base64 ``inline:`` text may appear.
    """
    key = SrtpKeyParams(SRTP_SUITES[0], KEY, SALT, tag=3)
    texts = [
        repr(key),
        repr(SrtpSessionKeys(key, key)),
        repr(SrtpContext(key, key)),
        repr(RtpSessionConfig(srtp=SrtpSessionKeys(key, key))),
    ]
    for text in texts:
        assert INLINE not in text
        assert INLINE[:16] not in text
        assert repr(KEY) not in text
        assert repr(SALT) not in text
    assert "AES_CM_128_HMAC_SHA1_80" in texts[0]


def _keys(seed: int, suite: str = SRTP_SUITES[0]) -> SrtpKeyParams:
    return SrtpKeyParams.generate(random.Random(seed).randbytes, suite)


def test_rekey_replaces_only_the_direction_that_changed() -> None:
    """A re-INVITE that changes only the peer's key must not reset our sending context.

    Rebuilding both libsrtp sessions would also forget the receive replay window and
    rollover counter of a direction whose key did not change.
    """
    a, b, b2 = _keys(1), _keys(2), _keys(3)
    alice = SrtpContext(a, b)
    bob = SrtpContext(b, a)
    first = alice.protect_rtp(encode_rtp(0, 1, 160, 0x11, b"one" * 10))
    assert bob.unprotect_rtp(first)
    bob.rekey(b2, a)  # bob's own key changes; alice's stays
    alice.rekey(a, b2)
    assert alice.keys == SrtpSessionKeys(a, b2)
    # bob kept alice's receive context: the replay of an old packet is still refused.
    with pytest.raises(SrtpError):
        bob.unprotect_rtp(first)
    second = alice.protect_rtp(encode_rtp(0, 2, 320, 0x11, b"two" * 10))
    assert bob.unprotect_rtp(second)[12:] == b"two" * 10
    back = bob.protect_rtp(encode_rtp(0, 9, 0, 0x22, b"back" * 10))
    assert alice.unprotect_rtp(back)[12:] == b"back" * 10


@pytest.mark.anyio
@pytest.mark.parametrize("suite", SRTP_SUITES)
async def test_set_srtp_on_open_sessions_protects_and_counts_failures(suite: str) -> None:
    """Sessions open in clear, get their keys later (as after an answer), then re-key.

    Packets protected with a key the receiver does not hold are dropped and counted,
    never delivered and never raised.
    """
    a_key, b_key, a_new = _keys(1, suite), _keys(2, suite), _keys(4, suite)
    wire: list[bytes] = []
    async with open_rtp_session() as a, open_rtp_session() as b:
        a.set_remote(b.local_rtp_address)
        b.set_remote(a.local_rtp_address)
        assert (a.srtp_active, b.srtp_active) == (False, False)
        a.set_srtp(SrtpSessionKeys(a_key, b_key))
        b.set_srtp(SrtpSessionKeys(b_key, a_key))
        assert (a.srtp_active, b.srtp_active) == (True, True)

        def tap(data: bytes) -> bool:
            wire.append(data)
            return True

        a.outgoing_filter = tap
        payload = bytes(range(160))
        a.send_payload(payload, 0)
        with anyio.fail_after(5):
            packet = await b.receive()
        assert packet.payload == payload
        assert wire[0][12 : 12 + len(payload)] != payload  # encrypted on the wire
        a.set_srtp(SrtpSessionKeys(a_new, b_key))  # b was not told: auth fails
        a.send_payload(payload, 160)
        with anyio.fail_after(5):
            while b.statistics().srtp_failures < 1:
                await anyio.sleep(0.01)
        b.set_srtp(SrtpSessionKeys(b_key, a_new))
        a.send_payload(payload, 320)
        with anyio.fail_after(5):
            packet = await b.receive()
        assert packet.payload == payload
        assert b.statistics().srtp_failures == 1
        a.set_srtp(None)
        b.set_srtp(None)
        assert (a.srtp_active, b.srtp_active) == (False, False)
        a.send_payload(payload, 480)
        with anyio.fail_after(5):
            assert (await b.receive()).payload == payload
        assert wire[-1][12:] == payload


def test_packets_in_flight_with_the_old_key_survive_a_rekey() -> None:
    """A peer's packets sent before it saw our answer still carry its old key.

    Bug found by the re-INVITE test on trio: after ``update_media`` the answerer switched
    to the offerer's new key when it sent its 200, and the offerer's packets already on
    their way (old key, one round trip's worth) failed authentication. The previous
    receive context now stays until the new key authenticates a packet.
    """
    a_old, a_new, b = _keys(1), _keys(5), _keys(2)
    alice = SrtpContext(a_old, b)
    bob = SrtpContext(b, a_old)
    in_flight = alice.protect_rtp(encode_rtp(0, 1, 160, 0x11, b"old" * 10))
    in_flight_rtcp = alice.protect_rtcp(RtcpReceiverReport(0x11).encode())
    bob.rekey(b, a_new)  # bob answered the re-offer
    alice.rekey(a_new, b)  # alice saw the answer
    assert bob.unprotect_rtp(in_flight)[12:] == b"old" * 10
    assert bob.unprotect_rtcp(in_flight_rtcp)
    fresh = alice.protect_rtp(encode_rtp(0, 2, 320, 0x11, b"new" * 10))
    assert bob.unprotect_rtp(fresh)[12:] == b"new" * 10
    # The new key proved itself: the old one is retired.
    late = SrtpContext(a_old, b).protect_rtp(encode_rtp(0, 3, 480, 0x11, b"late" * 10))
    with pytest.raises(SrtpError):
        bob.unprotect_rtp(late)
