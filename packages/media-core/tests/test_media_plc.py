"""Packet-loss concealment: pitch repetition, attenuation, silence, smooth recovery."""

from __future__ import annotations

import numpy as np

from rvoip_media_core import Concealer, ToneGenerator, detect_tone


def test_conceals_periodic_signal_then_fades_to_silence() -> None:
    tone = ToneGenerator(250.0, 0.5)  # 4 ms period: a voiced-speech-like pitch
    plc = Concealer(160)
    for _ in range(3):
        plc.good(tone.read(160))
    first = plc.conceal()
    # The first 10 ms repeat the waveform at full level and continue the tone.
    assert detect_tone(first, 250.0, threshold=0.8)
    assert np.max(np.abs(first[:80])) > 0.45 * 32767
    second = plc.conceal()
    third = plc.conceal()
    assert np.max(np.abs(second)) < np.max(np.abs(first))
    assert not third[-80:].any() or np.max(np.abs(third)) < np.max(np.abs(second))
    assert not plc.conceal().any()  # silent after 60 ms
    assert not plc.active


def test_recovery_cross_fades_and_resets() -> None:
    tone = ToneGenerator(300.0, 0.5)
    plc = Concealer(160)
    plc.good(tone.read(160))
    plc.good(tone.read(160))
    plc.conceal()
    assert plc.lost_samples == 160
    nxt = tone.read(160)
    out = plc.good(nxt)
    assert plc.lost_samples == 0
    assert np.array_equal(out[20:], nxt[20:])
    assert not np.array_equal(out[:20], nxt[:20]) or np.array_equal(out, nxt)


def test_unvoiced_history_repeats_last_frame_attenuated() -> None:
    rng = np.random.default_rng(2)
    noise = rng.integers(-3000, 3000, 160).astype(np.int16)
    plc = Concealer(160)
    plc.good(rng.integers(-3000, 3000, 160).astype(np.int16))
    plc.good(noise)
    out = plc.conceal()
    assert np.array_equal(out[:40], noise[:40])


def test_no_history_gives_silence() -> None:
    plc = Concealer(160)
    assert not plc.active
    assert not plc.conceal().any()
    plc.good(np.ones(160, dtype=np.int16))
    plc.reset()
    assert not plc.conceal().any()
