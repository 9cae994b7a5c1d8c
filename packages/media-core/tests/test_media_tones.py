"""Tone/DTMF generators (phase-continuous) and Goertzel detection."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_media_core import (
    DTMF_FREQUENCIES,
    DtmfDetector,
    ToneGenerator,
    detect_dtmf,
    detect_tone,
    dtmf_generator,
    goertzel_power,
    tone_level,
)


def _goertzel_recurrence(x: np.ndarray, freq: float, rate: int) -> float:
    """The textbook Goertzel recurrence, as the oracle for the vectorised form."""
    w = 2.0 * math.pi * freq / rate
    coeff = 2.0 * math.cos(w)
    s1 = s2 = 0.0
    for sample in x.tolist():
        s0 = sample + coeff * s1 - s2
        s2, s1 = s1, s0
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


@given(
    st.lists(st.integers(-32768, 32767), min_size=1, max_size=200),
    st.floats(50, 3950),
)
def test_goertzel_equals_recurrence(samples: list[int], freq: float) -> None:
    x = np.array(samples, dtype=np.float64)
    expected = _goertzel_recurrence(x, freq, 8000)
    assert goertzel_power(x, freq) == pytest.approx(expected, rel=1e-6, abs=1e-3)


def test_tone_is_phase_continuous_across_frames() -> None:
    split = ToneGenerator(1000.0, 0.5)
    whole = ToneGenerator(1000.0, 0.5)
    frames = np.concatenate([split.read(160) for _ in range(10)] + [split.read(37)])
    assert np.array_equal(frames, whole.read(1637))
    expected = np.rint(np.sin(2 * np.pi * 1000 * np.arange(1637) / 8000) * 0.5 * 32767)
    assert np.max(np.abs(frames - expected)) <= 1


@given(
    st.lists(st.integers(1, 3999), min_size=1, max_size=2),
    st.lists(st.integers(0, 2500), min_size=1, max_size=12),
    st.floats(0.0, 0.3),
)
def test_tone_reads_any_split_equal_the_sine_sum(
    freqs: list[int], sizes: list[int], amplitude: float
) -> None:
    # Integer frequencies are served from a shared periodic table; the reads, however they
    # are split (including across the table's end), are the sampled sine sum within 1 LSB.
    tone = ToneGenerator([float(f) for f in freqs], amplitude)
    out = np.concatenate([tone.read(n) for n in sizes])
    assert out.dtype == np.int16
    k = np.arange(sum(sizes))
    exact = sum(np.sin(2 * np.pi * f * k / 8000) for f in freqs) * amplitude * 32767
    assert out.shape == (sum(sizes),)
    if out.size:
        assert np.max(np.abs(out - np.rint(exact))) <= 1


def test_tone_frames_are_private_copies() -> None:
    a, b = ToneGenerator(440.0), ToneGenerator(440.0)
    frame = a.read(160)
    frame[:] = 0  # a caller may write into its frame; other generators are not affected
    assert np.array_equal(b.read(160), ToneGenerator(440.0).read(160))
    assert b.read(160).any()


def test_non_integer_tone_is_computed() -> None:
    split, whole = ToneGenerator(440.5), ToneGenerator(440.5)
    frames = np.concatenate([split.read(160), split.read(161)])
    assert np.array_equal(frames, whole.read(321))


def test_detect_tone() -> None:
    frame = ToneGenerator(1000.0).read(160)
    assert detect_tone(frame, 1000.0)
    assert not detect_tone(frame, 1400.0)
    assert tone_level(frame, 1000.0) == pytest.approx(1.0, abs=0.05)
    assert tone_level(np.zeros(160), 1000.0) == 0.0


@pytest.mark.parametrize("key", sorted(DTMF_FREQUENCIES))
def test_dtmf_every_key(key: str) -> None:
    gen = dtmf_generator(key)
    gen.read(80)  # start mid-phase
    assert detect_dtmf(gen.read(320)) == key


def test_dtmf_rejects_single_tone_noise_and_silence() -> None:
    assert detect_dtmf(ToneGenerator(697.0).read(320)) is None
    rng = np.random.default_rng(0)
    assert detect_dtmf(rng.integers(-8000, 8000, 320)) is None
    assert detect_dtmf(np.zeros(320)) is None
    with pytest.raises(ValueError, match="DTMF"):
        dtmf_generator("x")


def test_generator_validation() -> None:
    with pytest.raises(ValueError, match="clipping"):
        ToneGenerator((400.0, 450.0), amplitude=0.6)
    with pytest.raises(ValueError, match="frequency"):
        ToneGenerator(())


def test_dtmf_detector_debounces_key_presses() -> None:
    keys: list[str] = []
    detector = DtmfDetector(keys.append)
    silence = np.zeros(160, dtype=np.int16)
    for key in "159#":
        gen = dtmf_generator(key)
        results = [detector(gen.read(160)) for _ in range(4)]  # 80 ms press
        assert results == [None, key, None, None]
        detector.feed(silence)
    gen = dtmf_generator("7")
    detector.feed(gen.read(160))  # 20 ms blip: too short
    detector.feed(silence)
    # Two different keys back to back are two presses.
    for key in "00":
        for _ in range(3):
            detector.feed(dtmf_generator(key).read(160))
        detector.feed(silence)
    assert keys == ["1", "5", "9", "#", "0", "0"]


def test_dtmf_detector_single_frame_mode() -> None:
    keys: list[str] = []
    detector = DtmfDetector(keys.append, min_frames=1)
    gen = dtmf_generator("A")
    assert detector.feed(gen.read(160)) == "A"
    assert detector.feed(gen.read(160)) is None
    assert keys == ["A"]
