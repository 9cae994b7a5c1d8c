"""Sources and the WAV source/sink: round trip and clear errors."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from rvoip_media_core import (
    AudioSource,
    CallbackSource,
    SamplesSource,
    SilenceSource,
    ToneGenerator,
    WavFormatError,
    WavSink,
    WavSource,
)


def _write_wav(path: Path, rate: int, channels: int, width: int, frames: bytes) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(frames)


def test_wav_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    tone = ToneGenerator(440.0)
    frames = [tone.read(160) for _ in range(5)]
    with WavSink(path) as sink:
        for frame in frames[:4]:
            sink(frame)
        sink.write(frames[4])
    source = WavSource(path)
    assert np.array_equal(
        np.concatenate([source.read(160) for _ in range(5)]), np.concatenate(frames)
    )
    assert source.finished
    assert not source.read(160).any()


def test_wav_loop(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    _write_wav(path, 8000, 1, 2, np.arange(100, dtype="<i2").tobytes())
    source = WavSource(path, loop=True)
    out = source.read(250)
    assert out[:100].tolist() == list(range(100))
    assert out[100:200].tolist() == list(range(100))
    assert not source.finished


@pytest.mark.parametrize(
    ("rate", "channels", "width", "fragment"),
    [(16000, 1, 2, "16000 Hz"), (8000, 2, 2, "2 channel"), (8000, 1, 1, "8-bit")],
)
def test_wav_unsupported_format_names_file_and_format(
    tmp_path: Path, rate: int, channels: int, width: int, fragment: str
) -> None:
    path = tmp_path / "bad.wav"
    _write_wav(path, rate, channels, width, b"\x00" * 64)
    with pytest.raises(WavFormatError, match=fragment) as info:
        WavSource(path)
    assert "bad.wav" in str(info.value)
    assert "8000 Hz mono 16-bit" in str(info.value)


def test_wav_not_a_wav_and_missing(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not RIFF data at all")
    with pytest.raises(WavFormatError, match=r"junk\.wav"):
        WavSource(junk)
    with pytest.raises(WavFormatError, match=r"missing\.wav"):
        WavSource(tmp_path / "missing.wav")
    with pytest.raises(WavFormatError, match="cannot create"):
        WavSink(tmp_path / "no-such-dir" / "out.wav")
    sink = WavSink(tmp_path / "closed.wav")
    sink.close()
    sink.close()
    with pytest.raises(WavFormatError, match="closed"):
        sink.write(np.zeros(10, dtype=np.int16))


def test_samples_callback_and_silence_sources() -> None:
    src = SamplesSource([1, 2, 3])
    assert src.read(5).tolist() == [1, 2, 3, 0, 0]
    assert src.finished
    assert SamplesSource([]).read(2).tolist() == [0, 0]
    cb = CallbackSource(lambda n: np.full(n + 3, 7))
    assert cb.read(4).tolist() == [7, 7, 7, 7]
    assert CallbackSource(lambda n: [1]).read(3).tolist() == [1, 0, 0]
    assert not SilenceSource().read(160).any()
    for source in (src, cb, SilenceSource(), ToneGenerator(1000.0)):
        assert isinstance(source, AudioSource)
