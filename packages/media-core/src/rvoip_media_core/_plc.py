"""Packet-loss concealment for G.711, in the style of G.711 Appendix I.

Method: pitch-synchronous waveform repetition. On a loss, the pitch period is
estimated from the last 40 ms of good speech (normalised autocorrelation over lags
2.5-15 ms); the last period is repeated cyclically and the first repeated samples are
cross-faded with the real tail so the seam is smooth. From the second 10 ms of a loss
the output is attenuated linearly by 20 % per 10 ms, reaching silence after 60 ms.
The first good frame after a loss is cross-faded with the continued synthetic signal.
When no usable pitch is found (silence, noise) the last frame is repeated with the
same attenuation ("repeat last frame, attenuate, then silence").
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

_HISTORY_MS = 40
_MIN_PITCH_MS = 2.5
_MAX_PITCH_MS = 15.0
_ATTENUATE_AFTER_MS = 10
_ATTENUATION_PER_10MS = 0.2
_MIN_CORRELATION = 0.5


class Concealer:
    """Per-stream PLC state: feed every good frame, ask for a frame per lost one."""

    __slots__ = (
        "_fade",
        "_frames",
        "_hist_len",
        "_lost_samples",
        "_period",
        "_pos",
        "_rate",
        "_silent_after",
        "_wave",
        "_wave16",
        "frame_samples",
    )

    def __init__(self, frame_samples: int = 160, sample_rate: int = 8000) -> None:
        """State for frames of ``frame_samples`` at ``sample_rate``."""
        self.frame_samples = frame_samples
        self._rate = sample_rate
        self._hist_len = max(frame_samples, sample_rate * _HISTORY_MS // 1000)
        # The last good frames, kept by reference (no copy on the per-frame path).
        self._frames: list[NDArray[np.int16]] = []
        self._silent_after = sample_rate * 60 // 1000
        self._lost_samples = 0
        self._period: NDArray[np.float64] | None = None
        self._pos = 0
        self._fade = max(1, sample_rate // 400)  # 2.5 ms cross-fades
        # The whole concealment of a loss (repeated period × attenuation), computed once
        # when the loss starts: each lost frame is then a slice, not ten numpy calls.
        self._wave: NDArray[np.float64] | None = None
        self._wave16: NDArray[np.int16] | None = None

    @property
    def lost_samples(self) -> int:
        """Samples concealed in the current loss burst (0 when the last frame was good)."""
        return self._lost_samples

    @property
    def active(self) -> bool:
        """Whether concealment would produce anything but silence now."""
        return bool(self._frames) and self._lost_samples < self._silent_after

    def good(self, frame: NDArray[np.int16]) -> NDArray[np.int16]:
        """Record a received frame; returns it (cross-faded if it ends a loss).

        The frame is kept by reference: callers must not modify it afterwards.
        """
        if self._lost_samples:
            frame = self._end_loss(frame)
        frames = self._frames
        frames.append(frame)
        if len(frames) > 2:
            del frames[0]
        return frame

    def reset(self) -> None:
        """Forget the history (new source)."""
        self._frames = []
        self._lost_samples = 0
        self._period = None
        self._wave = self._wave16 = None

    def _end_loss(self, frame: NDArray[np.int16]) -> NDArray[np.int16]:
        x = frame.astype(np.float64)
        fade, lost, wave = self._fade, self._lost_samples, self._wave
        if self._period is not None and x.size >= fade:
            if wave is not None and lost + fade <= wave.size:
                synth = wave[lost : lost + fade]
            else:  # past the precomputed span: the attenuation is 0 there anyway
                synth = self._synth(fade) * self._gain_at(lost, fade)
            ramp = _ramp(fade)
            x[:fade] = synth * (1.0 - ramp) + x[:fade] * ramp
        self._lost_samples = 0
        self._period = None
        self._wave = self._wave16 = None
        self._frames = []
        return np.clip(np.rint(x), -32768, 32767).astype(np.int16)

    def conceal(self) -> NDArray[np.int16]:
        """A replacement for one lost frame."""
        n = self.frame_samples
        lost = self._lost_samples
        if not self._frames or lost >= self._silent_after:
            self._lost_samples = lost + n
            return np.zeros(n, dtype=np.int16)
        if lost == 0:
            self._start_loss()
        wave16, period = self._wave16, self._period
        self._lost_samples = lost + n
        if wave16 is not None and period is not None:
            self._pos = (self._pos + n) % period.size
            return wave16[lost : lost + n].copy()
        out = self._synth(n) * self._gain_at(lost, n)
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)

    def _start_loss(self) -> None:
        h = np.concatenate(self._frames).astype(np.float64)[-self._hist_len :]
        size = h.size
        lo = max(1, int(self._rate * _MIN_PITCH_MS / 1000))
        hi = min(size // 2, int(self._rate * _MAX_PITCH_MS / 1000))
        period_len = min(self.frame_samples, size)
        energy = float(np.dot(h, h))
        if energy > 0.0 and hi > lo:
            # Normalised cross-correlation of the last `hi` samples with the same
            # length `lag` samples earlier, for every lag lo..hi at once: the window
            # for lag L is h[size-hi-L : size-L]. np.correlate gives them from lag hi
            # down to lo; the window energies are a moving sum of squares.
            tail = h[-hi:]
            span = h[size - 2 * hi : size - lo]
            dots = np.correlate(span, tail, mode="valid")[::-1]
            energies = np.correlate(span * span, _ones(hi), mode="valid")[::-1]
            denom = np.sqrt(energies * float(np.dot(tail, tail)))
            with np.errstate(divide="ignore", invalid="ignore"):
                corr = np.where(denom > 0.0, dots / denom, -1.0)
            best = int(np.argmax(corr))
            if corr[best] >= _MIN_CORRELATION:
                period_len = lo + best
        period = h[-period_len:].copy()
        # Smooth the seam: the start of the repeated period blends with what preceded it.
        f = min(self._fade, period_len // 4)
        if f > 0 and size >= period_len + f:
            ramp = _ramp(f)
            before = h[-period_len - f : -period_len]
            period[-f:] = period[-f:] * (1.0 - ramp) + before * ramp
        self._period = period
        self._pos = 0
        # Everything a loss can play: up to 60 ms (then silence) plus one frame.
        total = self._silent_after + max(self.frame_samples, self._fade)
        wave = np.resize(period, total) * _gain_curve(self._rate, total)
        self._wave = wave
        self._wave16 = np.clip(np.rint(wave), -32768, 32767).astype(np.int16)

    def _synth(self, n: int) -> NDArray[np.float64]:
        period = self._period
        if period is None:
            return np.zeros(n)
        idx = (self._pos + np.arange(n)) % period.size
        self._pos = (self._pos + n) % period.size
        return period[idx]

    def _gain_at(self, start: int, n: int) -> NDArray[np.float64]:
        # G.711 App. I: full level for 10 ms, then -20 % per 10 ms, silent after 60 ms.
        t = (start + np.arange(n)) * (1000.0 / self._rate)
        gain = 1.0 - _ATTENUATION_PER_10MS * np.maximum(t - _ATTENUATE_AFTER_MS, 0.0) / 10.0
        result: NDArray[np.float64] = np.clip(gain, 0.0, 1.0)
        return result


_RAMPS: dict[int, NDArray[np.float64]] = {}
_ONES: dict[int, NDArray[np.float64]] = {}
_CURVES: dict[tuple[int, int], NDArray[np.float64]] = {}


def _ramp(n: int) -> NDArray[np.float64]:
    """``linspace(0, 1, n, endpoint=False)``, cached (read-only)."""
    ramp = _RAMPS.get(n)
    if ramp is None:
        ramp = _RAMPS[n] = np.linspace(0.0, 1.0, n, endpoint=False)
        ramp.flags.writeable = False
    return ramp


def _ones(n: int) -> NDArray[np.float64]:
    """``ones(n)``, cached (read-only)."""
    ones = _ONES.get(n)
    if ones is None:
        ones = _ONES[n] = np.ones(n)
        ones.flags.writeable = False
    return ones


def _gain_curve(rate: int, n: int) -> NDArray[np.float64]:
    """The attenuation of samples 0..n-1 of a loss (as ``Concealer._gain_at(0, n)``), cached."""
    key = (rate, n)
    curve = _CURVES.get(key)
    if curve is None:
        if len(_CURVES) >= 16:
            _CURVES.clear()
        t = np.arange(n) * (1000.0 / rate)
        gain = 1.0 - _ATTENUATION_PER_10MS * np.maximum(t - _ATTENUATE_AFTER_MS, 0.0) / 10.0
        curve = _CURVES[key] = np.clip(gain, 0.0, 1.0)
        curve.flags.writeable = False
    return curve
