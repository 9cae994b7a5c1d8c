"""ITU-T G.107 (06/2015) E-model: transmission rating R and MOS from delay and loss.

R = Ro − Is − Id − Ie,eff + A (G.107 §7), MOS from R per Annex B. The defaults are
G.107 Table 3; G.711 planning values per G.113 Appendix I (Ie 0, Bpl 4.3 without PLC,
25.1 with G.711 Appendix I PLC). Wideband calls (G.722, Opus) are rated with the
wideband E-model of ITU-T G.107.1 (``emodel_wb_r_factor``).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from rvoip_media_core._jitter import JitterStats
    from rvoip_rtp_core import SessionStatistics

G711_IE = 0.0
G711_BPL_NO_PLC = 4.3
G711_BPL_APPENDIX_I_PLC = 25.1

NARROWBAND_MODEL = "G.107"
WIDEBAND_MODEL = "G.107.1"

# ITU-T G.107.1 (06/2015) wideband E-model: the rating scale runs to Ro,WB = 129 (the
# narrowband scale's 100 stretched by 1.29 for the wider band), §7.1.
WB_RO = 129.0
WB_SCALE = 1.29
# Wideband equipment impairment and packet-loss robustness (Ie,WB, Bpl,WB) per codec.
# G.722 64 kbit/s: Ie,WB 13 from ITU-T G.113 Appendix IV (Table IV.1, provisional
# planning values for wideband codecs). G.113 lists no Bpl for G.722 with waveform-
# repetition PLC (what this engine does for it); 25.1, its value for G.711 with the
# analogous Appendix I PLC, is used. Opus is not in G.113 Appendix IV: Ie,WB 11 and
# Bpl 20 (32 kbit/s wideband speech, libopus PLC) are provisional values chosen here
# between G.722's and G.722.2's, to be replaced when ITU-T publishes them.
G722_IE_WB = 13.0
G722_BPL_WB = 25.1
OPUS_IE_WB = 11.0
OPUS_BPL_WB = 20.0


@attrs.frozen
class EModelParams:
    """Inputs of the E-model; defaults are G.107 Table 3 (delays in ms, loss in %)."""

    slr: float = 8.0
    rlr: float = 2.0
    stmr: float = 15.0
    lstr: float = 18.0
    ds: float = 3.0
    dr: float = 3.0
    telr: float = 65.0
    wepl: float = 110.0
    t: float = 0.0  # mean one-way delay of the echo path
    tr: float = 0.0  # round-trip delay in a 4-wire loop
    ta: float = 0.0  # absolute (mouth-to-ear) delay
    qdu: float = 1.0
    ie: float = 0.0
    bpl: float = 4.3
    ppl: float = 0.0  # random packet-loss probability, percent
    burst_r: float = 1.0
    nc: float = -70.0
    nfor: float = -64.0
    ps: float = 35.0
    pr: float = 35.0
    a: float = 0.0
    mt: float = 100.0
    st: float = 1.0


@attrs.frozen
class EModelResult:
    """The terms of one E-model evaluation."""

    ro: float
    is_: float
    idte: float
    idle: float
    idd: float
    id: float
    ie_eff: float
    r: float

    @property
    def mos(self) -> float:
        """MOS_CQE of this R (G.107 Annex B)."""
        return mos_from_r(self.r)


def _db_sum(*levels: float) -> float:
    return 10.0 * math.log10(sum(10.0 ** (x / 10.0) for x in levels))


def emodel(p: EModelParams) -> EModelResult:
    """Evaluate the E-model for ``p`` and return every term."""
    olr = p.slr + p.rlr
    # G.107 §7.2: basic signal-to-noise ratio Ro.
    nos = p.ps - p.slr - p.ds - 100.0 + 0.004 * (p.ps - olr - p.ds - 14.0) ** 2
    pre = p.pr + 10.0 * math.log10(1.0 + 10.0 ** ((10.0 - p.lstr) / 10.0))
    nor = p.rlr - 121.0 + pre + 0.008 * (pre - 35.0) ** 2
    nfo = p.nfor + p.rlr
    no = _db_sum(p.nc, nos, nor, nfo)
    ro = 15.0 - 1.5 * (p.slr + no)
    # G.107 §7.3: simultaneous impairment Is = Iolr + Ist + Iq.
    xolr = olr + 0.2 * (64.0 + no - p.rlr)
    iolr = 20.0 * ((1.0 + (xolr / 8.0) ** 8) ** (1.0 / 8.0) - xolr / 8.0)
    stmro = -10.0 * math.log10(
        10.0 ** (-p.stmr / 10.0) + math.exp(-p.t / 4.0) * 10.0 ** (-p.telr / 10.0)
    )
    ist = (
        12.0 * (1.0 + ((stmro - 13.0) / 6.0) ** 8) ** (1.0 / 8.0)
        - 28.0 * (1.0 + ((stmro + 1.0) / 19.4) ** 35) ** (1.0 / 35.0)
        - 13.0 * (1.0 + ((stmro - 3.0) / 33.0) ** 13) ** (1.0 / 13.0)
        + 29.0
    )
    q = 37.0 - 15.0 * math.log10(p.qdu)
    g = 1.07 + 0.258 * q + 0.0602 * q * q
    y = (ro - 100.0) / 15.0 + 46.0 / 8.4 - g / 9.0
    z = 46.0 / 30.0 - g / 40.0
    iq = 15.0 * math.log10(1.0 + 10.0**y + 10.0**z)
    is_ = iolr + ist + iq
    # G.107 §7.4: delay impairment Id = Idte + Idle + Idd.
    roe = -1.5 * (no - p.rlr)
    terv = (
        p.telr
        - 40.0 * math.log10((1.0 + p.t / 10.0) / (1.0 + p.t / 150.0))
        + 6.0 * math.exp(-0.3 * p.t * p.t)
    )
    if p.stmr < 9.0:
        terv += ist / 2.0
    re = 80.0 + 2.5 * (terv - 14.0)
    idte = ((roe - re) / 2.0 + math.sqrt((roe - re) ** 2 / 4.0 + 100.0) - 1.0) * (
        1.0 - math.exp(-p.t)
    )
    if p.stmr > 20.0:
        idte = math.sqrt(idte * idte + ist * ist)
    rle = 10.5 * (p.wepl + 7.0) * (p.tr + 1.0) ** -0.25
    idle = (ro - rle) / 2.0 + math.sqrt((ro - rle) ** 2 / 4.0 + 169.0)
    if p.ta <= p.mt:
        idd = 0.0
    else:
        x = math.log10(p.ta / p.mt) / math.log10(2.0)
        k = 6.0 * p.st
        idd = 25.0 * ((1.0 + x**k) ** (1.0 / k) - 3.0 * (1.0 + (x / 3.0) ** k) ** (1.0 / k) + 2.0)
    id_ = idte + idle + idd
    # G.107 §7.5: effective equipment impairment with packet loss.
    ie_eff = p.ie + (95.0 - p.ie) * p.ppl / (p.ppl / p.burst_r + p.bpl)
    r = ro - is_ - id_ - ie_eff + p.a
    return EModelResult(ro, is_, idte, idle, idd, id_, ie_eff, r)


def emodel_r_factor(
    mouth_to_ear_ms: float = 0.0,
    packet_loss_percent: float = 0.0,
    *,
    ie: float = G711_IE,
    bpl: float = G711_BPL_NO_PLC,
    burst_r: float = 1.0,
    echo_delay_ms: float | None = None,
    round_trip_ms: float | None = None,
) -> float:
    """R for a call: G.107 defaults with Ta = mouth-to-ear delay and the given loss.

    ``echo_delay_ms`` (T) defaults to the mouth-to-ear delay and ``round_trip_ms`` (Tr)
    to twice it, the usual assumption for a VoIP path with ideal echo control.
    """
    t = mouth_to_ear_ms if echo_delay_ms is None else echo_delay_ms
    tr = 2.0 * mouth_to_ear_ms if round_trip_ms is None else round_trip_ms
    return _r_factor(t, tr, mouth_to_ear_ms, ie, bpl, packet_loss_percent, burst_r)


@functools.lru_cache(maxsize=4096)
def _r_factor(
    t: float, tr: float, ta: float, ie: float, bpl: float, ppl: float, burst_r: float
) -> float:
    # Calls of one process mostly share their figures (no loss, the same buffer delay):
    # a periodic quality report of many calls then costs a lookup each, not a model.
    params = EModelParams(t=t, tr=tr, ta=ta, ie=ie, bpl=bpl, ppl=ppl, burst_r=burst_r)
    return emodel(params).r


def mos_from_r(r: float) -> float:
    """MOS_CQE from R (G.107 Annex B): 1 below R 0, 4.5 above R 100.

    Annex B's polynomial is applied as written, so for 0 < R < 6.5 it dips slightly
    below 1 (minimum 0.989 at R ≈ 3.2), as in the reference implementations.
    """
    if r < 0.0:
        return 1.0
    if r > 100.0:
        return 4.5
    return 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6


class LossRunTracker:
    """Estimates G.107's BurstR from the sequence of received/lost frames.

    A two-state (found/lost) Markov model: p = P(lost | previous found),
    q = P(found | previous lost) and BurstR = 1 / (p + q) (G.107 §7.5 note; 1 for random
    loss, > 1 for bursty loss). Loss smoother than random is reported as 1 (the model's
    random-loss value), never below.
    """

    __slots__ = ("_prev_lost", "found_found", "found_lost", "lost_found", "lost_lost")

    def __init__(self) -> None:
        """Start with no history."""
        self.found_found = self.found_lost = self.lost_found = self.lost_lost = 0
        self._prev_lost: bool | None = None

    def update(self, lost: bool) -> None:
        """Record the next frame: lost (concealed) or found (played)."""
        prev = self._prev_lost
        if prev is not None:
            if prev:
                if lost:
                    self.lost_lost += 1
                else:
                    self.lost_found += 1
            elif lost:
                self.found_lost += 1
            else:
                self.found_found += 1
        self._prev_lost = lost

    @property
    def burst_ratio(self) -> float:
        """BurstR of what was seen so far (1.0 with no loss)."""
        found = self.found_found + self.found_lost
        lost = self.lost_found + self.lost_lost
        if found == 0 or lost == 0 or self.found_lost == 0:
            return 1.0
        p = self.found_lost / found
        q = self.lost_found / lost
        if p + q <= 0.0:
            return 1.0
        return max(1.0, 1.0 / (p + q))


@attrs.frozen
class QualityEstimate:
    """Call quality estimated with the E-model from measured statistics."""

    mos_score: float
    r_factor: float
    packet_loss_percent: float
    jitter_ms: float
    round_trip_ms: float
    mouth_to_ear_ms: float = 0.0
    model: str = NARROWBAND_MODEL
    """Which E-model gave the figures: ``"G.107"`` (narrowband) or ``"G.107.1"`` (wideband).

    A wideband call's ``r_factor`` is on the 0..129 scale of G.107.1; its ``mos_score``
    comes from R/1.29 through G.107 Annex B, so MOS values of both models compare."""


def emodel_wb_r_factor(
    mouth_to_ear_ms: float = 0.0,
    packet_loss_percent: float = 0.0,
    *,
    ie_wb: float = G722_IE_WB,
    bpl: float = G722_BPL_WB,
    burst_r: float = 1.0,
) -> float:
    """R_WB of the wideband E-model (ITU-T G.107.1) for a call, on the 0..129 scale.

    R_WB = Ro,WB − Is,WB − Id,WB − Ie,eff,WB (G.107.1 §7). With the default connection
    (G.107 Table 3 values, as G.107.1 takes them) Is,WB is 0; Id,WB is computed with
    G.107's delay equations scaled to the wideband range (×1.29); and
    Ie,eff,WB = Ie,WB + (Ro,WB − Ie,WB) · Ppl / (Ppl/BurstR + Bpl) (G.107.1 §7.5, the
    G.107 form with 95 replaced by 129).
    """
    ppl = max(0.0, packet_loss_percent)
    nb_delay = _delay_impairment(mouth_to_ear_ms)
    id_wb = WB_SCALE * nb_delay
    ie_eff = ie_wb + (WB_RO - ie_wb) * ppl / (ppl / burst_r + bpl)
    return WB_RO - id_wb - ie_eff


@functools.lru_cache(maxsize=1024)
def _delay_impairment(mouth_to_ear_ms: float) -> float:
    # Id of G.107 (echo on the same delay, Tr = 2 × Ta) minus its zero-delay value, so
    # a wideband call with no delay and no loss rates Ro,WB − Ie,WB.
    at = emodel(EModelParams(t=mouth_to_ear_ms, tr=2 * mouth_to_ear_ms, ta=mouth_to_ear_ms))
    zero = emodel(EModelParams())
    return max(0.0, at.id - zero.id)


def mos_from_r_wb(r_wb: float) -> float:
    """MOS of a wideband R: R_WB / 1.29 through G.107 Annex B (G.107.1 Appendix)."""
    return mos_from_r(r_wb / WB_SCALE)


def quality_metrics(
    *,
    packet_loss_percent: float,
    jitter_ms: float,
    round_trip_ms: float,
    jitter_buffer_ms: float,
    packetization_ms: float = 20.0,
    ie: float = G711_IE,
    bpl: float = G711_BPL_NO_PLC,
    burst_r: float = 1.0,
    wideband: bool = False,
) -> QualityEstimate:
    """QualityEstimate from loss, jitter and delay figures.

    Mouth-to-ear delay = RTT/2 (one-way network) + jitter-buffer delay + packetisation.
    With ``wideband`` the model is G.107.1 and ``ie`` is the codec's Ie,WB.
    """
    m2e = round_trip_ms / 2.0 + jitter_buffer_ms + packetization_ms
    loss = max(0.0, packet_loss_percent)
    if wideband:
        r = emodel_wb_r_factor(m2e, loss, ie_wb=ie, bpl=bpl, burst_r=burst_r)
        return QualityEstimate(
            mos_from_r_wb(r), r, loss, jitter_ms, round_trip_ms, m2e, WIDEBAND_MODEL
        )
    r = emodel_r_factor(m2e, loss, ie=ie, bpl=bpl, burst_r=burst_r)
    return QualityEstimate(mos_from_r(r), r, loss, jitter_ms, round_trip_ms, m2e)


def quality_from_statistics(
    stats: SessionStatistics,
    *,
    jitter_buffer_ms: float = 40.0,
    packetization_ms: float = 20.0,
    jitter: JitterStats | None = None,
    ie: float = G711_IE,
    bpl: float = G711_BPL_NO_PLC,
    burst_r: float = 1.0,
    wideband: bool = False,
) -> QualityEstimate:
    """QualityEstimate of the received stream from rtp-core ``SessionStatistics``.

    Loss is the RFC 3550 cumulative loss of the received stream; with ``jitter``
    (the jitter buffer's counters) packets discarded as late or to shrink the delay
    count as lost too, since the listener never hears them.
    """
    received = stats.received
    loss = 0.0
    jitter_ms = 0.0
    if received is not None:
        loss = received.loss_percent
        jitter_ms = received.jitter_seconds * 1000.0
        if jitter is not None and received.packets_expected > 0:
            discarded = jitter.late + jitter.dropped_overflow + jitter.dropped_adapt
            loss += 100.0 * discarded / received.packets_expected
    rtt_ms = (stats.rtt_seconds or 0.0) * 1000.0
    return quality_metrics(
        packet_loss_percent=loss,
        jitter_ms=jitter_ms,
        round_trip_ms=rtt_ms,
        jitter_buffer_ms=jitter_buffer_ms,
        packetization_ms=packetization_ms,
        ie=ie,
        bpl=bpl,
        burst_r=burst_r,
        wideband=wideband,
    )
