"""Tone and DTMF generation (phase-continuous across frames) and Goertzel detection."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

# ITU-T Q.23 DTMF frequency pairs (low group, high group).
DTMF_LOW = (697.0, 770.0, 852.0, 941.0)
DTMF_HIGH = (1209.0, 1336.0, 1477.0, 1633.0)
_KEYPAD = ("123A", "456B", "789C", "*0#D")
DTMF_FREQUENCIES: dict[str, tuple[float, float]] = {
    key: (DTMF_LOW[row], DTMF_HIGH[col])
    for row, keys in enumerate(_KEYPAD)
    for col, key in enumerate(keys)
}


def _period(frequencies: tuple[float, ...], sample_rate: int) -> int | None:
    """Samples after which the sum of the tones repeats exactly, or None (not integral)."""
    period = 1
    for f in frequencies:
        if not float(f).is_integer() or f <= 0:
            return None
        period = math.lcm(period, sample_rate // math.gcd(sample_rate, int(f)))
    return period if period <= sample_rate else None


_TABLE_SPARE = 1024  # extra samples after one period, so most reads are one slice
_TABLES: dict[tuple[tuple[float, ...], float, int], NDArray[np.int16]] = {}


def _table(freqs: tuple[float, ...], amplitude: float, sample_rate: int, period: int) -> Any:
    """One period (plus spare) of the tone sum, shared by all generators with that key."""
    key = (freqs, amplitude, sample_rate)
    table = _TABLES.get(key)
    if table is None:
        if len(_TABLES) >= 64:  # bounded: many distinct tones fall back to a fresh table
            _TABLES.clear()
        k = np.arange(period + _TABLE_SPARE, dtype=np.float64) % period
        phases = np.outer(np.array([2.0 * math.pi * f / sample_rate for f in freqs]), k)
        table = np.rint(np.sin(phases).sum(axis=0) * (amplitude * 32767.0)).astype(np.int16)
        table.flags.writeable = False
        _TABLES[key] = table
    return table


class ToneGenerator:
    """A sum of sine tones as int16 frames, continuous in phase from one read to the next.

    ``amplitude`` is the peak of each component as a fraction of full scale. Integer
    frequencies repeat after at most one second of samples: those read slices of one
    precomputed period shared by every generator of the same tone (a call-centre's
    hundreds of tone sources cost no sine evaluations per frame).
    """

    __slots__ = (
        "_period",
        "_phase",
        "_pos",
        "_step",
        "_table",
        "amplitude",
        "frequencies",
        "sample_rate",
    )

    def __init__(
        self,
        frequencies: float | Sequence[float],
        amplitude: float = 0.3,
        sample_rate: int = 8000,
    ) -> None:
        """Create a generator for one or more frequencies in Hz."""
        freqs = (
            (float(frequencies),)
            if isinstance(frequencies, int | float)
            else tuple(float(f) for f in frequencies)
        )
        if not freqs:
            raise ValueError("at least one frequency is needed")
        if not 0.0 <= amplitude * len(freqs) <= 1.0:
            raise ValueError("amplitude × number of tones must be within 0..1 (no clipping)")
        self.frequencies = freqs
        self.amplitude = amplitude
        self.sample_rate = sample_rate
        self._step = np.array([2.0 * math.pi * f / sample_rate for f in freqs])
        self._phase = np.zeros(len(freqs))
        self._pos = 0
        self._period = _period(freqs, sample_rate)
        self._table = (
            None
            if self._period is None
            else _table(freqs, float(amplitude), sample_rate, self._period)
        )

    def read(self, n: int = 160) -> NDArray[np.int16]:
        """The next ``n`` samples."""
        table, period = self._table, self._period
        if table is not None and period is not None:
            pos = self._pos
            self._pos = (pos + n) % period
            if pos + n <= len(table):
                out: NDArray[np.int16] = table[pos : pos + n].copy()
                return out
            return np.take(table, np.arange(pos, pos + n) % period)
        k = np.arange(n, dtype=np.float64)
        phases = self._phase[:, None] + self._step[:, None] * k[None, :]
        signal = np.sin(phases).sum(axis=0) * (self.amplitude * 32767.0)
        # Keep the phase accumulator small so long calls keep full precision.
        self._phase = np.mod(self._phase + self._step * n, 2.0 * math.pi)
        result: NDArray[np.int16] = np.rint(signal).astype(np.int16)
        return result


def dtmf_generator(digit: str, amplitude: float = 0.25, sample_rate: int = 8000) -> ToneGenerator:
    """A dual-tone generator for a DTMF key ("0"-"9", "*", "#", "A"-"D")."""
    try:
        low, high = DTMF_FREQUENCIES[digit.upper()]
    except KeyError:
        raise ValueError(f"not a DTMF key: {digit!r}") from None
    return ToneGenerator((low, high), amplitude, sample_rate)


def goertzel_power(samples: ArrayLike, frequency: float, sample_rate: int = 8000) -> float:
    """Squared magnitude at ``frequency`` of a block, as the Goertzel recurrence gives it.

    Computed as the equivalent single-bin DFT (one numpy dot product instead of a
    Python loop); the tests check it against the literal recurrence.
    """
    x = np.asarray(samples, dtype=np.float64)
    n = np.arange(x.shape[-1])
    w = np.exp(-2j * math.pi * frequency * n / sample_rate)
    return float(abs(np.dot(x, w)) ** 2)


def tone_level(samples: ArrayLike, frequency: float, sample_rate: int = 8000) -> float:
    """Fraction (0..~1) of the block's energy that lies at ``frequency``."""
    x = np.asarray(samples, dtype=np.float64)
    energy = float(np.dot(x, x))
    if energy <= 0.0:
        return 0.0
    result: float = 2.0 * goertzel_power(x, frequency, sample_rate) / (x.shape[-1] * energy)
    return result


def detect_tone(
    samples: ArrayLike, frequency: float, sample_rate: int = 8000, threshold: float = 0.5
) -> bool:
    """Whether a tone at ``frequency`` carries at least ``threshold`` of the block's energy."""
    return tone_level(samples, frequency, sample_rate) >= threshold


def detect_dtmf(
    samples: ArrayLike,
    sample_rate: int = 8000,
    min_level: float = 0.6,
    max_twist_db: float = 8.0,
) -> str | None:
    """The DTMF key present in a block (≥ 10 ms recommended), or None.

    Requires the strongest low and high tones together to hold ``min_level`` of the
    energy, each to dominate its group by 6 dB, and their levels within ``max_twist_db``.
    """
    x = np.asarray(samples, dtype=np.float64)
    energy = float(np.dot(x, x))
    if energy <= 0.0:
        return None
    norm = 2.0 / (x.shape[-1] * energy)
    low = [goertzel_power(x, f, sample_rate) * norm for f in DTMF_LOW]
    high = [goertzel_power(x, f, sample_rate) * norm for f in DTMF_HIGH]
    row = int(np.argmax(low))
    col = int(np.argmax(high))
    lo, hi = low[row], high[col]
    if lo + hi < min_level or lo <= 0.0 or hi <= 0.0:
        return None
    if abs(10.0 * math.log10(lo / hi)) > max_twist_db:
        return None
    others_low = max(v for i, v in enumerate(low) if i != row)
    others_high = max(v for i, v in enumerate(high) if i != col)
    if others_low * 4.0 > lo or others_high * 4.0 > hi:
        return None
    return _KEYPAD[row][col]


class DtmfDetector:
    """In-band DTMF detection on a stream of frames, debounced.

    A key is reported once when seen in ``min_frames`` consecutive frames, and re-armed
    after a frame without it.

    Use it as (or inside) a stream's sink: ``detector.feed(frame)`` or ``detector(frame)``.
    """

    __slots__ = ("_candidate", "_count", "_reported", "min_frames", "on_digit", "sample_rate")

    def __init__(
        self,
        on_digit: Callable[[str], None],
        min_frames: int = 2,
        sample_rate: int = 8000,
    ) -> None:
        """Call ``on_digit(key)`` for each key press (≥ ``min_frames`` × 20 ms of tone)."""
        self.on_digit = on_digit
        self.min_frames = min_frames
        self.sample_rate = sample_rate
        self._candidate: str | None = None
        self._count = 0
        self._reported = False

    def feed(self, frame: ArrayLike) -> str | None:
        """Analyse one frame; returns the key if this frame completes a detection."""
        key = detect_dtmf(frame, self.sample_rate)
        if key is None or key != self._candidate:
            self._candidate, self._count, self._reported = key, 1 if key else 0, False
            if key is None or self.min_frames > 1:
                return None
        else:
            self._count += 1
        if not self._reported and self._count >= self.min_frames:
            self._reported = True
            self.on_digit(key)
            return key
        return None

    __call__ = feed
