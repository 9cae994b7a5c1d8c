"""Audio files as sources: every WAV width, rates, channels, FLAC/Ogg, limits, errors."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from rvoip_media_core import (
    AudioFileError,
    AudioFileLimits,
    FileSource,
    read_audio_file,
)


def _peak(samples: NDArray[np.int16], rate: int) -> float:
    """The frequency of the strongest FFT bin."""
    x = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.argmax(spectrum) * rate / len(samples))


def _tone(freq: float, rate: int, seconds: float = 0.5) -> NDArray[np.float64]:
    t = np.arange(int(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


def _pcm_bytes(signal: NDArray[np.float64], width: int, channels: int) -> bytes:
    """Interleaved little-endian PCM of ``width`` bytes (8-bit unsigned, as WAV has it)."""
    frames = np.repeat(signal[:, None], channels, axis=1).reshape(-1)
    if width == 1:
        return (np.round(frames * 127) + 128).astype(np.uint8).tobytes()
    if width == 2:
        return np.round(frames * 32767).astype("<i2").tobytes()
    if width == 4:
        return np.round(frames * 2147483647).astype("<i4").tobytes()
    as32 = np.round(frames * 8388607).astype("<i4")
    return as32.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def _write_wav(path: Path, rate: int, channels: int, width: int, frames: bytes) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(frames)


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_pcm_wav_any_width_rate_channels(
    tmp_path: Path, width: int, rate: int, channels: int
) -> None:
    path = tmp_path / "tone.wav"
    _write_wav(path, rate, channels, width, _pcm_bytes(_tone(600, rate), width, channels))
    samples, got_rate = read_audio_file(path)
    assert got_rate == rate
    assert len(samples) == int(rate * 0.5)
    assert 0.45 < np.abs(samples).max() / 32768 < 0.55  # full level kept, downmix averaged
    assert abs(_peak(samples, rate) - 600) < 5
    source = FileSource(path)
    narrow = source.read(4000)
    assert abs(_peak(narrow, 8000) - 600) < 5


def test_stereo_is_averaged(tmp_path: Path) -> None:
    """Left 440 Hz, right silence: the mono downmix has the tone at half level."""
    rate = 16000
    left = np.round(_tone(440, rate) * 32767).astype(np.int16)
    frames = np.stack([left, np.zeros_like(left)], axis=1).astype("<i2").tobytes()
    path = tmp_path / "stereo.wav"
    _write_wav(path, rate, 2, 2, frames)
    samples, _ = read_audio_file(path)
    assert np.allclose(samples, left / 2, atol=1)


@pytest.mark.parametrize(
    ("name", "fmt", "subtype"),
    [
        ("float.wav", "WAV", "FLOAT"),
        ("ext.wav", "WAVEX", "PCM_24"),
        ("voice.flac", "FLAC", "PCM_16"),
        ("voice.ogg", "OGG", "VORBIS"),
    ],
)
def test_soundfile_formats(tmp_path: Path, name: str, fmt: str, subtype: str) -> None:
    path = tmp_path / name
    soundfile.write(str(path), _tone(1000, 44100), 44100, format=fmt, subtype=subtype)
    source = FileSource(path)
    assert source.native_rate == 44100
    assert source.duration == pytest.approx(0.5, abs=0.01)
    assert abs(_peak(source.read(3200), 8000) - 1000) < 5


def test_at_rate_resamples_from_the_original_and_keeps_the_position(tmp_path: Path) -> None:
    """A 48 kHz file on a 48 kHz call goes straight through: a 6 kHz tone survives.

    Through 8 kHz it would be gone (above 4 kHz Nyquist).
    """
    path = tmp_path / "hi.wav"
    _write_wav(path, 48000, 1, 2, _pcm_bytes(_tone(6000, 48000, 1.0), 2, 1))
    source = FileSource(path)
    assert np.abs(source.read(800)[100:]).max() < 400  # 8 kHz: filtered out (after the onset)
    wide = source.at_rate(48000)
    assert wide.position == 800 * 6
    assert abs(_peak(wide.read(9600), 48000) - 6000) < 10
    assert source.at_rate(8000) is source


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match=r"nope\.wav: cannot open"):
        FileSource(tmp_path / "nope.wav")


def test_not_audio_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, not audio\n")
    with pytest.raises(AudioFileError, match=r"notes\.txt: not an audio file"):
        read_audio_file(path)


def test_size_and_duration_limits(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    _write_wav(path, 8000, 1, 2, _pcm_bytes(_tone(440, 8000, 2.0), 2, 1))
    with pytest.raises(AudioFileError, match=r"2\.0 s is longer than the 1 s limit"):
        read_audio_file(path, AudioFileLimits(max_seconds=1.0))
    with pytest.raises(AudioFileError, match="larger than the 1000 limit"):
        read_audio_file(path, AudioFileLimits(max_bytes=1000))
    flac = tmp_path / "long.flac"
    soundfile.write(str(flac), _tone(440, 8000, 2.0), 8000)
    with pytest.raises(AudioFileError, match="longer than"):
        read_audio_file(flac, AudioFileLimits(max_seconds=1.0))


_RIFF = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=200), riff=st.booleans())
def test_arbitrary_bytes_read_or_raise_audio_file_error(
    tmp_path: Path, body: bytes, riff: bool
) -> None:
    """Whatever a file holds (with or without a RIFF/fmt header in front), reading it
    gives samples or AudioFileError: never wave.Error, struct.error or libsndfile's own."""
    path = tmp_path / "fuzz.wav"
    path.write_bytes((_RIFF if riff else b"") + body)
    error = ""
    try:
        samples, rate = read_audio_file(path)
    except AudioFileError as exc:
        error = str(exc)
    if error:
        assert "fuzz.wav" in error
    else:
        assert samples.dtype == np.int16
        assert 1000 <= rate <= 384000
