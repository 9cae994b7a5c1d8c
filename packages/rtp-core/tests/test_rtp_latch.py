"""Source latching (strictrtp / NAT probation), sans-IO: the core fed addresses and ``now``."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_rtp_core import (
    RtcpReceiverReport,
    RtpError,
    RtpSessionCore,
    SourceLatch,
    check_remote,
    encode_rtcp,
    encode_rtp,
)

PEER = ("192.0.2.10", 40000)  # the signalled (SDP) address
PEER_RTCP = ("192.0.2.10", 40001)
NAT = ("198.51.100.7", 61000)  # where the NATed peer's packets really come from
ATTACKER = ("203.0.113.66", 40000)


def _core(mode: str = "strict", mux: bool = False, **kw: float) -> RtpSessionCore:
    latch = SourceLatch(mode=mode, rtcp_mux=mux, **kw)  # type: ignore[arg-type]
    core = RtpSessionCore(rng=random.Random(1), latch=latch)
    core.latch.set_remote(PEER)
    return core


def _rtp(seq: int, ssrc: int = 0x1111, ts: int = 0) -> bytes:
    return encode_rtp(0, seq & 0xFFFF, ts, ssrc, bytes(20))


_RR = encode_rtcp([RtcpReceiverReport(0x1111)])


def test_attacker_from_another_port_does_not_move_the_destination() -> None:
    """Bug: any packet with a new SSRC from any address re-latched the destination.

    One spoofed packet (or a handful with random SSRCs) from another address redirected
    our stream to the attacker (or to a victim: reflection). Now a source that is not
    the signalled one must send a consistent in-sequence stream during the probation;
    scattered packets are dropped and counted, and the destination stays put.
    """
    core = _core()
    rng = random.Random(7)
    for i in range(50):
        assert (
            core.receive_rtp(_rtp(rng.getrandbits(16), rng.getrandbits(32)), i * 0.01, ATTACKER)
            is None
        )
    assert core.latch.rtp_target == PEER
    assert core.latch.locked is None
    assert core.statistics().rtp_source_drops == 50
    assert core.last_activity() is None  # refused packets are no media activity


def test_signalled_peer_latches_at_once() -> None:
    core = _core()
    assert core.receive_rtp(_rtp(1), 0.0, PEER) is not None
    assert core.latch.locked == PEER
    assert core.latch.rtp_target == PEER
    # Locked: another address is refused even with a perfect in-sequence stream.
    for seq in range(100, 120):
        assert core.receive_rtp(_rtp(seq, 0x2222), 0.1 + seq * 0.001, ATTACKER) is None
    assert core.latch.rtp_target == PEER
    assert core.latch.rtp_drops == 20


def test_nated_peer_latches_within_probation() -> None:
    """Packets from another port/host, one SSRC, in sequence: latched on the 4th."""
    core = _core()
    got = [core.receive_rtp(_rtp(500 + i), i * 0.02, NAT) for i in range(6)]
    assert [p is not None for p in got] == [False, False, False, True, True, True]
    assert core.latch.locked == NAT
    assert core.latch.rtp_target == NAT
    assert core.latch.rtcp_target == PEER_RTCP  # RTCP latches on its own
    # After the lock the signalled address itself is another source: refused.
    assert core.receive_rtp(_rtp(1, 0x3333), 0.2, PEER) is None
    assert core.receive_rtp(_rtp(506), 0.2, NAT) is not None


def test_sequence_gap_or_other_ssrc_restarts_the_probation_count() -> None:
    core = _core()
    for seq in (10, 11, 13, 14, 15):  # a gap after 11: counting restarts at 13
        assert core.receive_rtp(_rtp(seq), 0.0, NAT) is None
    assert core.receive_rtp(_rtp(16, ssrc=0x9999), 0.0, NAT) is None  # SSRC change
    assert core.latch.locked is None
    assert core.receive_rtp(_rtp(0xFFFF), 0.0, ATTACKER) is None
    # Interleaved sources reset each other's count: neither latches.
    for seq in range(20):
        core.receive_rtp(_rtp(seq), 0.01, NAT)
        core.receive_rtp(_rtp(seq, 0x7777), 0.01, ATTACKER)
    assert core.latch.locked is None
    assert core.latch.rtp_target == PEER


def test_sequence_wraps_during_probation() -> None:
    core = _core()
    results = [core.receive_rtp(_rtp(seq), 0.0, NAT) for seq in (0xFFFE, 0xFFFF, 0, 1)]
    assert results[-1] is not None
    assert core.latch.locked == NAT


def test_probation_expiry_locks_the_signalled_address() -> None:
    core = _core(probation_time=1.0)
    assert core.receive_rtp(_rtp(1), 10.0, NAT) is None  # the window opens: 10.0-11.0
    assert core.receive_rtp(_rtp(2), 11.5, NAT) is None  # too late: signalled locked
    assert core.latch.locked == PEER
    for seq in range(3, 10):
        assert core.receive_rtp(_rtp(seq), 12.0, NAT) is None
    assert core.latch.rtp_target == PEER
    assert core.receive_rtp(_rtp(1, 0x4444), 12.0, PEER) is not None


def test_ssrc_change_from_the_locked_source_is_a_new_stream() -> None:
    core = _core()
    assert core.receive_rtp(_rtp(1, 0xAAAA), 0.0, PEER) is not None
    assert core.receive_rtp(_rtp(9000, 0xBBBB), 0.02, PEER) is not None  # re-INVITE/transfer
    assert core.primary_source is not None
    assert core.primary_source.ssrc == 0xBBBB
    assert core.latch.rtp_drops == 0


def test_refused_source_cannot_force_an_ssrc_collision() -> None:
    core = _core()
    ours = core.ssrc
    assert core.receive_rtp(_rtp(1, ours), 0.0, ATTACKER) is None
    assert core.ssrc == ours
    assert core.ssrc_collisions == 0


def test_rtcp_follows_the_same_rule() -> None:
    core = _core()
    assert core.receive_rtcp(_RR, 0.0, ATTACKER) == []
    assert core.latch.rtcp_target == PEER_RTCP
    assert core.receive_rtcp(_RR, 0.1, PEER_RTCP) != []
    assert core.receive_rtcp(_RR, 0.2, ("192.0.2.10", 40003)) == []  # locked now
    assert core.statistics().rtcp_source_drops == 2
    assert core.statistics().rtcp_received == 1


def test_rtcp_of_a_nated_peer_latches_on_the_rtp_host() -> None:
    core = _core()
    nat_rtcp = (NAT[0], 61007)  # the NAT maps the RTCP port independently
    assert core.receive_rtcp(_RR, 0.0, nat_rtcp) == []  # RTP not learned yet
    for i in range(4):
        core.receive_rtp(_rtp(i), i * 0.02, NAT)
    assert core.receive_rtcp(_RR, 0.1, ATTACKER) == []
    assert core.receive_rtcp(_RR, 0.1, nat_rtcp) != []
    assert core.latch.rtcp_target == nat_rtcp
    assert core.receive_rtcp(_RR, 0.2, (NAT[0], 61009)) == []


def test_rtcp_mux_is_bound_to_the_rtp_source() -> None:
    core = _core(mux=True)
    assert core.latch.rtcp_target == PEER
    assert core.receive_rtcp(_RR, 0.0, PEER) != []  # signalled, before any RTP
    for i in range(4):
        core.receive_rtp(_rtp(i), i * 0.02, NAT)
    assert core.latch.rtcp_target == NAT
    assert core.receive_rtcp(_RR, 0.1, NAT) != []
    assert core.receive_rtcp(_RR, 0.1, PEER) == []
    assert core.receive_rtcp(_RR, 0.1, ATTACKER) == []


def test_learn_mode_relearns_after_silence() -> None:
    core = _core("learn", relearn_after=2.0)
    assert core.receive_rtp(_rtp(1), 0.0, PEER) is not None
    assert core.receive_rtp(_rtp(1, 0x5555), 1.0, NAT) is None  # locked, not silent
    # Silent for 2 s: a consistent new source is learned (after the probation) ...
    got = [core.receive_rtp(_rtp(100 + i, 0x5555), 3.0 + i * 0.02, NAT) for i in range(4)]
    assert got[-1] is not None
    assert core.latch.rtp_target == NAT
    # ... and scattered packets still are not.
    assert core.receive_rtp(_rtp(7, 0x6666), 3.5, ATTACKER) is None
    # After NAT's silence the previous source (known) re-locks at once.
    assert core.receive_rtp(_rtp(2), 9.0, PEER) is not None
    assert core.latch.rtp_target == PEER


def test_strict_mode_never_relearns() -> None:
    core = _core()
    core.receive_rtp(_rtp(1), 0.0, PEER)
    got = [core.receive_rtp(_rtp(100 + i, 0x5555), 100.0 + i * 0.02, NAT) for i in range(10)]
    assert got == [None] * 10
    assert core.latch.rtp_target == PEER


def test_off_mode_is_the_old_behaviour() -> None:
    core = _core("off")
    assert core.receive_rtp(_rtp(1, 0x1), 0.0, ATTACKER) is not None
    assert core.latch.rtp_target == ATTACKER
    assert core.receive_rtp(_rtp(2, 0x1), 0.0, NAT) is not None
    assert core.latch.rtp_target == ATTACKER  # same SSRC: no re-latch
    assert core.receive_rtp(_rtp(3, 0x2), 0.0, NAT) is not None
    assert core.latch.rtp_target == NAT
    assert core.receive_rtcp(_RR, 0.0, ATTACKER) != []
    assert core.latch.rtcp_target == ATTACKER


def test_no_follow_sends_to_the_signalled_address() -> None:
    latch = SourceLatch(follow=False)
    core = RtpSessionCore(rng=random.Random(1), latch=latch)
    latch.set_remote(PEER)
    for i in range(4):
        core.receive_rtp(_rtp(i), 0.0, NAT)
    assert latch.locked == NAT
    assert latch.rtp_target == PEER


def test_same_remote_again_keeps_the_lock_and_a_new_one_restarts() -> None:
    core = _core()
    for i in range(4):
        core.receive_rtp(_rtp(i), 0.0, NAT)
    core.latch.set_remote(PEER)  # re-INVITE with the same SDP (hold, refresh)
    assert core.latch.locked == NAT
    core.latch.set_remote(("192.0.2.99", 50000))  # a new address: new probation
    fresh = core.latch  # a new name: mypy narrowed core.latch.locked above
    assert (fresh.locked, fresh.rtp_target) == (None, ("192.0.2.99", 50000))


def test_ipv6_source_spellings_match() -> None:
    latch = SourceLatch()
    core = RtpSessionCore(rng=random.Random(1), latch=latch)
    latch.set_remote(("2001:db8:0:0::1", 5004))  # normalised to "2001:db8::1"
    assert latch.rtp_target == ("2001:db8::1", 5004)
    assert core.receive_rtp(_rtp(1), 0.0, ("2001:db8::1", 5004, 0, 0)) is not None
    assert core.receive_rtp(_rtp(2), 0.0, ("2001:db8::1", 5004, 0, 0)) is not None
    assert core.receive_rtp(_rtp(3), 0.0, ("2001:db8::1", 5004)) is not None
    assert core.receive_rtp(_rtp(4), 0.0, ("2001:db8::2", 5004, 0, 0)) is None


def test_no_source_means_no_check() -> None:
    core = _core()
    assert core.receive_rtp(_rtp(1, 0x1234), 0.0) is not None
    assert core.latch.locked is None


def test_last_activity_tracks_rtp_and_rtcp() -> None:
    """Session-core ends a call after N s without RTP and RTCP (hold: RTCP only)."""
    core = _core()
    assert core.last_activity() is None
    core.receive_rtcp(_RR, 5.0, PEER_RTCP)
    assert (core.last_rtp_received, core.last_rtcp_received, core.last_activity()) == (
        None,
        5.0,
        5.0,
    )
    core.receive_rtp(_rtp(1), 7.0, PEER)
    assert core.last_activity() == 7.0
    core.receive_rtcp(_RR, 9.0, PEER_RTCP)
    assert (core.last_rtp_received, core.last_activity()) == (7.0, 9.0)
    core.receive_rtp(b"\x00", 11.0, PEER)  # unparseable: no activity
    core.receive_rtcp(_RR, 11.0, ATTACKER)  # refused: no activity
    assert core.last_activity() == 9.0


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (("example.com", 5004), "not an IP literal"),
        (("localhost", 5004), "not an IP literal"),
        (("127.0.0.1", 0), "not in 1-65535"),
        (("127.0.0.1", 65536), "not in 1-65535"),
        (("127.0.0.1", -1), "not in 1-65535"),
        (("127.0.0.1", "5004"), "not in 1-65535"),
        (("127.0.0.1",), "must be"),
        ((None, 5004), "not an IP literal"),
    ],
)
def test_check_remote_refuses(address: tuple[str, int], message: str) -> None:
    with pytest.raises(RtpError, match=message):
        check_remote(address)


def test_rtcp_port_of_65535_is_refused() -> None:
    """Bug: ``m=audio 65535`` made the RTCP port 65536 and an OverflowError in sendto."""
    latch = SourceLatch()
    with pytest.raises(RtpError, match="no port for RTCP"):
        latch.set_remote(("192.0.2.1", 65535))
    with pytest.raises(RtpError, match="not in 1-65535"):
        latch.set_remote(("192.0.2.1", 5004), ("192.0.2.1", 65536))
    latch.set_remote(("192.0.2.1", 65535), ("192.0.2.1", 65534))  # explicit a=rtcp: fine
    SourceLatch(rtcp_mux=True).set_remote(("192.0.2.1", 65535))  # mux: no extra port


def test_bad_latch_settings() -> None:
    with pytest.raises(RtpError, match="latch mode"):
        SourceLatch(mode="loose")  # type: ignore[arg-type]
    with pytest.raises(RtpError, match="probation_packets"):
        SourceLatch(probation_packets=0)


_ADDRS = [PEER, NAT, ATTACKER, ("198.51.100.7", 61001)]


@given(
    st.sampled_from(["strict", "learn"]),
    st.lists(
        st.tuples(
            st.integers(0, len(_ADDRS) - 1),
            st.integers(0, 2),
            st.integers(0, 6),
            st.floats(0.0, 1.5),
            st.booleans(),
        ),
        max_size=80,
    ),
)
def test_only_signalled_or_probation_passing_sources_are_latched(
    mode: str, events: list[tuple[int, int, int, float, bool]]
) -> None:
    """Whatever arrives, the destination moves away from the signalled address only to a
    source whose last four packets were in sequence with one SSRC (or, in ``learn``
    mode, back to a source locked before)."""
    core = _core(mode)
    now = 0.0
    history: list[tuple[tuple[str, int], int, int]] = []
    locked_before: set[tuple[str, int]] = set()
    seqs = [0] * len(_ADDRS)
    for index, ssrc, jump, step, rtcp in events:
        now += step
        source = _ADDRS[index]
        if rtcp:
            core.receive_rtcp(_RR, now, source)
            continue
        seqs[index] = (seqs[index] + (1 if jump < 4 else jump)) & 0xFFFF  # mostly in sequence
        before = core.latch.rtp_target
        core.receive_rtp(_rtp(seqs[index], ssrc), now, source)
        history.append((source, ssrc, seqs[index]))
        target = core.latch.rtp_target
        if target != before and target != PEER:
            assert target == source
            run = history[-4:]
            consistent = len(run) == 4 and all(
                a == source and s == ssrc and (q - run[0][2]) & 0xFFFF == k
                for k, (a, s, q) in enumerate(run)
            )
            assert consistent or source in locked_before
        if core.latch.locked is not None:
            locked_before.add(core.latch.locked)
        assert target in _ADDRS


def test_check_remote_memo_changes_no_answer() -> None:
    """Validated addresses are memoised; the memo never lets a refused one through.

    ``True == 1`` (and hashes alike): once ``("192.0.2.1", 1)`` is cached, the tuple
    ``("192.0.2.1", True)`` must still be refused as before, and a name never cached.
    """
    assert check_remote(("192.0.2.1", 1)) == ("192.0.2.1", 1)
    assert check_remote(("192.0.2.1", 1)) == ("192.0.2.1", 1)
    with pytest.raises(RtpError):
        check_remote(("192.0.2.1", True))  # type: ignore[arg-type]
    assert check_remote(("0::1", 4000)) == ("::1", 4000)
    assert check_remote(("0::1", 4000)) == ("::1", 4000)  # normalised from the memo too
    for _ in range(2):
        with pytest.raises(RtpError):
            check_remote(("example.com", 4000))
    for n in range(3000):  # bounded: cleared when full, answers unchanged
        assert check_remote((f"10.0.{n // 256}.{n % 256}", 5000)) == (
            f"10.0.{n // 256}.{n % 256}",
            5000,
        )
