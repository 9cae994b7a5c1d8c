"""RFC 3550 appendix A statistics: worked examples, probation, restart, properties."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_rtp_core import (
    ReportBlock,
    SourceStatistics,
    ntp_from_time,
    ntp_middle32,
    rtcp_interval,
    rtt_from_report,
    seq_add,
)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_a8_jitter_worked_example(corpora: Path) -> None:
    rows = _rows(corpora / "rtp" / "rfc3550" / "jitter_a8_worked_example.tsv")
    src = SourceStatistics(ssrc=1, clock_rate=8000)
    for i, row in enumerate(rows):
        src.update(100 + i, int(row["rtp_ts_S"]), int(row["arrival_R_ts_units"]) / 8000)
        assert src.jitter_q4 == int(row["jitter_q4_integer_A8"]), row
        assert src.jitter_q4 >> 4 == int(row["reported_jitter_q4_shr4"])
        assert src.jitter == pytest.approx(float(row["J_float_A8"]), abs=0.1)
    assert src.report_block(0.0).jitter == int(rows[-1]["reported_jitter_q4_shr4"])


def test_a3_loss_worked_example(corpora: Path) -> None:
    """Interval loss with a 16-bit wrap and a duplicate (the TSV's three reports)."""
    rows = _rows(corpora / "rtp" / "rfc3550" / "loss_a3_worked_example.tsv")
    # Sequences consistent with the TSV: base 65530, one lost before the first RR;
    # no loss across the wrap; then 7 expected, 5 received including a duplicate.
    intervals = [
        [65530, 65531, 65533, 65534, 65535],
        [0, 1, 2, 3, 4],
        [5, 6, 6, 9, 11],
    ]
    src = SourceStatistics(ssrc=7, clock_rate=8000)
    assert not src.update(65529, 0, 0.0)  # probation packet (A.1, MIN_SEQUENTIAL = 2)
    for seqs, row in zip(intervals, rows, strict=True):
        for seq in seqs:
            assert src.update(seq, 0, 0.0)
        assert src.max_seq == int(row["max_seq"])
        assert src.cycles == int(row["cycles"])
        assert src.extended_max == int(row["extended_max"])
        assert src.expected == int(row["expected"])
        assert src.received == int(row["received"])
        assert src.cumulative_lost == int(row["cumulative_lost"])
        block = src.report_block(0.0)
        assert block.fraction_lost == int(row["fraction_lost_8bit"])
        assert block.cumulative_lost == int(row["cumulative_lost"])
        assert block.highest_sequence == int(row["extended_max"])
    assert src.duplicates == 1


def test_probation_resets_on_out_of_order() -> None:
    src = SourceStatistics(ssrc=1, clock_rate=8000)
    assert not src.update(10, 0, 0.0)
    assert not src.update(20, 0, 0.0)  # not sequential: probation restarts
    assert src.probation == 1
    assert src.update(21, 0, 0.0)
    assert src.valid
    assert (src.base_seq, src.received, src.expected) == (21, 1, 1)


def test_large_jump_then_restart() -> None:
    """A.1: one packet far away is dropped; two sequential ones re-sync the source."""
    src = SourceStatistics(ssrc=1, clock_rate=8000)
    src.update(100, 0, 0.0)
    src.update(101, 0, 0.0)
    assert not src.update(20000, 0, 0.0)
    assert src.received == 1
    assert src.update(20001, 0, 0.0)
    assert (src.base_seq, src.max_seq, src.received) == (20001, 20001, 1)


def test_wrap_counts_cycles() -> None:
    src = SourceStatistics(ssrc=1, clock_rate=8000)
    for i in range(10):
        src.update(seq_add(65530, i), i * 160, i * 0.02)
    assert src.cycles == 65536
    assert src.extended_max == 65536 + 3
    assert src.cumulative_lost == 0
    assert src.jitter == 0


def test_late_misordered_beyond_window_is_not_rejected() -> None:
    src = SourceStatistics(ssrc=1, clock_rate=8000)
    for s in range(200, 260):
        src.update(s, 0, 0.0)
    assert src.update(230, 0, 0.0)  # duplicate within MAX_MISORDER
    assert src.duplicates == 1


def test_sender_report_gives_lsr_and_dlsr() -> None:
    src = SourceStatistics(ssrc=1, clock_rate=8000)
    src.update(1, 0, 10.0)
    src.update(2, 160, 10.02)
    ntp = ntp_from_time(1000.0)
    src.on_sender_report(ntp, 10.0)
    block = src.report_block(10.5)
    assert block.lsr == ntp_middle32(ntp)
    assert block.dlsr == 32768


def test_rtt_from_report() -> None:
    sent = 1795000000.0
    lsr = ntp_middle32(ntp_from_time(sent))
    block = ReportBlock(1, 0, 0, 0, 0, lsr, 65536 // 2)  # peer held it 0.5 s
    rtt = rtt_from_report(block, sent + 0.62)
    assert rtt == pytest.approx(0.12, abs=1e-4)
    assert rtt_from_report(ReportBlock(1, 0, 0, 0, 0, 0, 0), sent) is None
    assert rtt_from_report(block, sent + 0.1) is None  # negative: ignored


def test_rtcp_interval_a7() -> None:
    # Two members, we send: senders (2) > members/4, so the whole bandwidth is shared.
    assert rtcp_interval(2, 2, 400.0, True, 100.0, False, lambda: 0.5) == pytest.approx(
        5.0 / (2.71828 - 1.5)
    )
    # Initial report: half the minimum.
    assert rtcp_interval(2, 1, 400.0, False, 100.0, True, lambda: 0.5) == pytest.approx(
        2.5 / (2.71828 - 1.5)
    )
    # Large session of receivers: 1000 members, 1 sender, we are a receiver.
    t = rtcp_interval(1000, 1, 400.0, False, 100.0, False, lambda: 0.0)
    assert t == pytest.approx(100.0 * 999 / 300.0 * 0.5 / (2.71828 - 1.5))
    # As the one sender among many: 25 % of the bandwidth for 1 sender.
    t = rtcp_interval(1000, 1, 400.0, True, 200.0, False, lambda: 0.0)
    assert t == pytest.approx(5.0 * 0.5 / (2.71828 - 1.5))
    rng = random.Random(1)
    values = [rtcp_interval(2, 1, 400.0, True, 100.0, False, rng.random) for _ in range(50)]
    assert min(values) >= 2.5 / (2.71828 - 1.5)
    assert max(values) <= 7.5 / (2.71828 - 1.5)


@given(
    st.integers(0, 0xFFFF),
    st.integers(5, 400),
    st.lists(st.sampled_from(["ok", "lose", "dup", "swap"]), min_size=5, max_size=400),
)
def test_accounting_under_loss_reorder_duplication(
    start: int, count: int, actions: list[str]
) -> None:
    """Every packet is accounted: received = unique + duplicates, lost = expected - unique."""
    sent = list(range(count))
    stream: list[int] = [0, 1]  # two in order to pass probation
    i = 2
    for action in actions:
        if i >= count:
            break
        if action == "lose":
            i += 1
        elif action == "dup":
            stream += [i, i]
            i += 1
        elif action == "swap" and i + 1 < count:
            stream += [i + 1, i]
            i += 2
        else:
            stream.append(i)
            i += 1
    src = SourceStatistics(ssrc=5, clock_rate=8000)
    for n, k in enumerate(stream):
        src.update(seq_add(start, sent[k]), k * 160, n * 0.02)
    unique_after_probation = len(set(stream)) - 1
    highest = max(stream)
    assert src.extended_max - src.base_seq == highest - 1
    assert src.expected == highest
    assert src.received == len(stream) - 1
    assert src.duplicates == len(stream) - 1 - unique_after_probation
    assert src.expected - (src.received - src.duplicates) == highest - unique_after_probation


def test_switching_the_clock_keeps_the_jitter_estimate() -> None:
    """A source first measured at 8000 (before the Opus answer was applied) switched to
    48000: perfectly timed packets afterwards leave the jitter at 0, with no jump from
    mixing arrival units of the two clocks."""
    src = SourceStatistics(ssrc=1, clock_rate=8000)
    seq, ts, t = 100, 0, 0.0
    for _ in range(3):
        src.update(seq, ts, t)
        seq, ts, t = seq + 1, ts + 960, t + 0.02
    src.set_clock_rate(48000)
    assert src.clock_rate == 48000
    at_switch = src.jitter
    src.update(seq, ts, t)
    seq, ts, t = seq + 1, ts + 960, t + 0.02
    # Without converting the last arrival this packet looked 1600 units late.
    assert src.jitter <= at_switch
    for _ in range(50):
        src.update(seq, ts, t)
        seq, ts, t = seq + 1, ts + 960, t + 0.02
    assert src.jitter < at_switch / 10
