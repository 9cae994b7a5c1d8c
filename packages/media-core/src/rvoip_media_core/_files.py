"""Audio files as call sources: WAV of any PCM width, rate and channel count, FLAC, Ogg.

PCM WAV (8, 16, 24 and 32-bit integers) is read with the stdlib ``wave`` module; every
other format libsndfile knows (float WAV, WAVE_FORMAT_EXTENSIBLE, FLAC, Ogg Vorbis/Opus,
AIFF …) through ``soundfile``, imported only when such a file is played. Channels are
averaged to mono and the samples resampled with libsoxr: once to 8 kHz (the rate of the
source protocol) and, when a call runs at another rate, once more from the file's own
rate to the call's, so a 48 kHz file on an Opus call is never squeezed through 8 kHz.

Files are bounded (``AudioFileLimits``): a path an application takes from a user or a
configuration must not make the process read gigabytes into memory.
"""

from __future__ import annotations

import os
import wave
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from rvoip_media_core._codecs import CodecError, resample
from rvoip_media_core._errors import MediaCoreError
from rvoip_media_core._sources import SamplesSource

SOURCE_RATE = 8000
"""The rate of ``AudioSource.read``: what every source yields unless converted."""

MIN_FILE_RATE = 1000
MAX_FILE_RATE = 384_000


class AudioFileError(MediaCoreError):
    """An audio file is missing, unreadable, too large, or in a format nothing here reads.

    The message names the file and the problem.
    """


@attrs.frozen
class AudioFileLimits:
    """How large an audio file may be played (read whole into memory).

    Attributes:
        max_bytes: the file's size on disk (default 64 MiB).
        max_seconds: its duration (default 600 s; a 10-minute 48 kHz file holds about
            55 MB of int16 samples once resampled for an Opus call).
    """

    max_bytes: int = 64 * 1024 * 1024
    max_seconds: float = 600.0


DEFAULT_FILE_LIMITS = AudioFileLimits()


def _soundfile() -> Any:
    try:
        import soundfile  # type: ignore[import-untyped]
    except (ImportError, OSError) as exc:  # OSError: the wheel's libsndfile did not load
        raise AudioFileError(f"reading this format needs the soundfile package ({exc})") from None
    return soundfile


def _pcm_to_int16(raw: bytes, width: int) -> NDArray[np.int16]:
    """Little-endian PCM frames of ``width`` bytes per sample as int16 (interleaved)."""
    usable = len(raw) // width * width
    if width == 1:
        # WAV 8-bit samples are unsigned, centred on 128.
        u8 = np.frombuffer(raw, dtype=np.uint8, count=usable)
        return ((u8.astype(np.int16) - 128) << 8).astype(np.int16)
    if width == 2:
        return np.frombuffer(raw, dtype="<i2", count=usable // 2).astype(np.int16)
    if width == 3:
        b = np.frombuffer(raw, dtype=np.uint8, count=usable).reshape(-1, 3)
        # The top two bytes of a 24-bit little-endian sample are its int16 value.
        top: NDArray[np.int16] = (
            b[:, 1].astype(np.uint16) | (b[:, 2].astype(np.uint16) << 8)
        ).view(np.int16)
        return top
    if width == 4:
        return (np.frombuffer(raw, dtype="<i4", count=usable // 4) >> 16).astype(np.int16)
    raise AudioFileError(f"{8 * width}-bit PCM")


def _downmix(frames: NDArray[np.int16], channels: int) -> NDArray[np.int16]:
    if channels == 1:
        return frames.reshape(-1)
    usable = len(frames) // channels * channels
    mixed = frames[:usable].reshape(-1, channels).astype(np.int32).mean(axis=1)
    mono: NDArray[np.int16] = np.round(mixed).astype(np.int16)
    return mono


def _read_wave(path: str, limits: AudioFileLimits) -> tuple[NDArray[np.int16], int] | None:
    """A PCM WAV through the stdlib; None when ``wave`` does not take the format."""
    try:
        with wave.open(path, "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            count = wav.getnframes()
            _check_format(path, rate, channels, count, limits)
            if width not in (1, 2, 3, 4):
                raise AudioFileError(f"{path}: {8 * width}-bit PCM is not supported")
            raw = wav.readframes(count)
    except (wave.Error, EOFError, ValueError):
        # Not a RIFF/PCM file the stdlib reads (float, extensible, FLAC …): soundfile's turn.
        return None
    return _downmix(_pcm_to_int16(raw, width), channels), rate


def _read_soundfile(path: str, limits: AudioFileLimits) -> tuple[NDArray[np.int16], int]:
    sf = _soundfile()
    try:
        info = sf.info(path)
        rate, channels, count = int(info.samplerate), int(info.channels), int(info.frames)
        _check_format(path, rate, channels, count, limits)
        # float32, not int16: libsndfile converts float files to int without scaling
        # (every |x| < 1 becomes 0); integer formats come back normalised to [-1, 1).
        data = sf.read(path, dtype="float32", always_2d=True)[0]
    except AudioFileError:
        raise
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioFileError(f"{path}: not an audio file this stack reads ({exc})") from None
    mixed = np.asarray(data, dtype=np.float64).mean(axis=1)
    samples = np.clip(np.round(np.nan_to_num(mixed) * 32768.0), -32768, 32767)
    return samples.astype(np.int16), rate


def _check_format(
    path: str, rate: int, channels: int, frames: int, limits: AudioFileLimits
) -> None:
    if not MIN_FILE_RATE <= rate <= MAX_FILE_RATE:
        raise AudioFileError(f"{path}: sample rate {rate} Hz is outside 1-384 kHz")
    if channels < 1:
        raise AudioFileError(f"{path}: no audio channels")
    # frames < 0: libsndfile did not know the length (a stream): the byte limit holds it.
    if frames > 0 and frames / rate > limits.max_seconds:
        raise AudioFileError(
            f"{path}: {frames / rate:.1f} s is longer than the {limits.max_seconds:g} s limit"
        )


def read_audio_file(
    path: str | os.PathLike[str], limits: AudioFileLimits = DEFAULT_FILE_LIMITS
) -> tuple[NDArray[np.int16], int]:
    """An audio file's samples as mono int16 at the file's own rate.

    Args:
        path: a WAV (any PCM width, float, extensible), FLAC, Ogg or other libsndfile file.
        limits: the largest file (bytes) and longest duration accepted.

    Returns:
        ``(samples, sample_rate)``: channels averaged to one.

    Raises:
        AudioFileError: the file is missing, too large or long, or in no readable format;
            the message names the file and the problem.
    """
    name = os.fspath(path)
    try:
        size = os.stat(name).st_size
    except OSError as exc:
        raise AudioFileError(f"{name}: cannot open ({exc.strerror or exc})") from None
    if size > limits.max_bytes:
        raise AudioFileError(f"{name}: {size} bytes is larger than the {limits.max_bytes} limit")
    try:
        result = _read_wave(name, limits)
    except OSError as exc:
        raise AudioFileError(f"{name}: cannot read ({exc})") from None
    if result is None:
        result = _read_soundfile(name, limits)
    return result


class FileSource(SamplesSource):
    """An audio file played as a source, resampled for the call that plays it.

    ``read`` yields 8 kHz like every source; ``at_rate(rate)`` gives the same audio
    resampled from the file's own rate to ``rate``, starting where this source is.

    Raises:
        AudioFileError: see ``read_audio_file``; also when resampling is unavailable.
    """

    __slots__ = ("_native", "_rates", "native_rate", "path")

    def __init__(
        self,
        path: str | os.PathLike[str],
        loop: bool = False,
        limits: AudioFileLimits = DEFAULT_FILE_LIMITS,
    ) -> None:
        """Read and resample the whole file (bounded by ``limits``)."""
        self.path = os.fspath(path)
        native, self.native_rate = read_audio_file(self.path, limits)
        self._native = native
        self._rates: dict[int, NDArray[np.int16]] = {}
        super().__init__(self._resampled(SOURCE_RATE), loop)

    def _resampled(self, rate: int) -> NDArray[np.int16]:
        data = self._rates.get(rate)
        if data is None:
            try:
                data = resample(self._native, self.native_rate, rate)
            except CodecError as exc:
                raise AudioFileError(f"{self.path}: {exc}") from None
            self._rates[rate] = data
        return data

    @property
    def duration(self) -> float:
        """The file's length in seconds."""
        return len(self._native) / self.native_rate

    def at_rate(self, rate: int) -> SamplesSource:
        """The rest of this file as a source at ``rate`` Hz (resampled from the original)."""
        if rate == SOURCE_RATE:
            return self
        source = SamplesSource(self._resampled(rate), loop=self.loop)
        # Where this 8 kHz source is, in samples at the new rate.
        source.seek(self.position * rate // SOURCE_RATE)
        return source
