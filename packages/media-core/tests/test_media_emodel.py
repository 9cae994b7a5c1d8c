"""E-model (ITU-T G.107): every reference point within 0.01 MOS; quality helpers."""

from __future__ import annotations

import csv
from pathlib import Path

import attrs
import pytest

from rvoip_media_core import (
    G711_BPL_APPENDIX_I_PLC,
    EModelParams,
    emodel,
    emodel_r_factor,
    mos_from_r,
    quality_from_statistics,
    quality_metrics,
)


def _rows(corpora: Path) -> list[dict[str, str]]:
    with (corpora / "emodel" / "reference_points.tsv").open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_reference_points(corpora: Path) -> None:
    rows = _rows(corpora)
    assert len(rows) == 175
    for row in rows:
        params = EModelParams(
            t=float(row["T_ms"]),
            ta=float(row["Ta_ms"]),
            tr=float(row["Tr_ms"]),
            ie=float(row["Ie"]),
            bpl=float(row["Bpl"]),
            ppl=float(row["Ppl_percent"]),
            burst_r=float(row["BurstR"]),
        )
        result = emodel(params)
        case = row["case"]
        assert abs(result.mos - float(row["MOS"])) <= 0.01, case
        assert result.r == pytest.approx(float(row["R"]), abs=1e-3), case
        assert result.ro == pytest.approx(float(row["Ro"]), abs=1e-3), case
        assert result.is_ == pytest.approx(float(row["Is"]), abs=1e-3), case
        assert result.idd == pytest.approx(float(row["Idd"]), abs=1e-3), case
        assert result.ie_eff == pytest.approx(float(row["Ie_eff"]), abs=1e-3), case


def test_r_to_mos_table(corpora: Path) -> None:
    with (corpora / "emodel" / "r_to_mos.tsv").open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            assert mos_from_r(float(row["R"])) == pytest.approx(float(row["MOS_CQE"]), abs=1e-3)


def test_defaults_give_g107_value() -> None:
    assert emodel(EModelParams()).r == pytest.approx(93.2062, abs=1e-4)
    assert mos_from_r(150.0) == 4.5
    assert mos_from_r(-3.0) == 1.0


def test_r_factor_call_helper_matches_grid_assumptions() -> None:
    # Spot value of the corpus README: G.711 with PLC, 150 ms one-way, 1 % loss -> R 85.90.
    r = emodel_r_factor(150.0, 1.0, bpl=G711_BPL_APPENDIX_I_PLC)
    assert r == pytest.approx(85.90, abs=0.01)


def test_quality_metrics_mouth_to_ear_delay() -> None:
    q = quality_metrics(
        packet_loss_percent=1.0, jitter_ms=3.0, round_trip_ms=200.0, jitter_buffer_ms=40.0
    )
    assert q.mouth_to_ear_ms == pytest.approx(100.0 + 40.0 + 20.0)
    assert q.r_factor == pytest.approx(emodel_r_factor(160.0, 1.0))
    assert q.mos_score == pytest.approx(mos_from_r(q.r_factor))
    assert q.jitter_ms == 3.0


@attrs.frozen
class _Reception:
    loss_percent: float
    jitter_seconds: float
    packets_expected: int


@attrs.frozen
class _Session:
    received: _Reception | None
    rtt_seconds: float | None


def test_quality_from_statistics_uses_rtp_figures() -> None:
    stats = _Session(_Reception(5.0, 0.002, 1000), 0.05)
    q = quality_from_statistics(stats, jitter_buffer_ms=40.0)  # type: ignore[arg-type]
    assert q.packet_loss_percent == 5.0
    assert q.round_trip_ms == pytest.approx(50.0)
    assert q.jitter_ms == pytest.approx(2.0)
    assert q.r_factor == pytest.approx(emodel_r_factor(25.0 + 40.0 + 20.0, 5.0))
    nothing = quality_from_statistics(_Session(None, None))  # type: ignore[arg-type]
    assert nothing.packet_loss_percent == 0.0


def test_loss_run_tracker_burst_ratio() -> None:
    import random

    from rvoip_media_core import LossRunTracker

    rng = random.Random(4)
    random_loss = LossRunTracker()
    for _ in range(20000):
        random_loss.update(rng.random() < 0.1)
    assert random_loss.burst_ratio == pytest.approx(1.0, abs=0.1)
    bursty = LossRunTracker()
    for k in range(20000):
        bursty.update(k % 50 < 5)  # 5 lost in a row every 50: 10 % loss in bursts
    # p = 1/45, q = 1/5 -> BurstR = 1 / (0.0222 + 0.2) = 4.5
    assert bursty.burst_ratio == pytest.approx(4.5, rel=0.01)
    isolated = LossRunTracker()
    for k in range(1000):
        isolated.update(k % 20 == 10)  # smoother than random: reported as 1
    assert isolated.burst_ratio == 1.0
    assert LossRunTracker().burst_ratio == 1.0
    # The E-model uses it: bursty loss hurts more than random loss at equal Ppl (G.107).
    assert emodel_r_factor(0, 5.0, burst_r=4.5) < emodel_r_factor(0, 5.0)


@pytest.mark.parametrize(
    ("m2e", "loss", "burst"), [(40.0, 0.0, 1.0), (180.0, 3.5, 1.7), (400.0, 12.0, 1.0)]
)
def test_r_factor_repeats_the_direct_model(m2e: float, loss: float, burst: float) -> None:
    direct = emodel(
        EModelParams(t=m2e, tr=2 * m2e, ta=m2e, ie=0.0, bpl=25.1, ppl=loss, burst_r=burst)
    ).r
    for _ in range(3):  # the same inputs again: the same figure (the result is cached)
        assert emodel_r_factor(m2e, loss, ie=0.0, bpl=25.1, burst_r=burst) == direct
