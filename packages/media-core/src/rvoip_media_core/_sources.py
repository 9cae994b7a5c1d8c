"""Audio sources (what a stream sends) and WAV file source/sink (stdlib ``wave``)."""

from __future__ import annotations

import os
import wave
from collections.abc import Callable
from typing import BinaryIO, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rvoip_media_core._errors import WavFormatError

WAV_RATE = 8000


@runtime_checkable
class AudioSource(Protocol):
    """Anything that yields int16 PCM frames: ``read(n)`` returns exactly ``n`` samples.

    The result may be a view of the source's own buffer: callers must not modify it.
    """

    def read(self, n: int) -> NDArray[np.int16]:
        """The next ``n`` samples."""
        ...


AudioSink = Callable[[NDArray[np.int16]], None]
"""A receiver of decoded frames (one int16 array per packet time)."""


class SilenceSource:
    """Digital silence."""

    __slots__ = ()

    def read(self, n: int) -> NDArray[np.int16]:
        """``n`` zero samples."""
        return np.zeros(n, dtype=np.int16)


class SamplesSource:
    """Plays an in-memory int16 buffer once (then silence) or in a loop."""

    __slots__ = ("_pos", "loop", "samples")

    def __init__(self, samples: ArrayLike, loop: bool = False) -> None:
        """Wrap ``samples`` (copied to int16)."""
        self.samples: NDArray[np.int16] = np.array(samples, dtype=np.int16).reshape(-1)
        self.loop = loop
        self._pos = 0

    @property
    def finished(self) -> bool:
        """True once a non-looping source has played everything."""
        return not self.loop and self._pos >= self.samples.size

    @property
    def position(self) -> int:
        """How many samples were read (within the current loop)."""
        return self._pos

    def seek(self, position: int) -> None:
        """Continue from sample ``position`` (clamped to the buffer)."""
        self._pos = max(0, min(int(position), self.samples.size))

    def read(self, n: int) -> NDArray[np.int16]:
        """The next ``n`` samples (zero-padded at the end of a non-looping buffer)."""
        pos = self._pos
        size = self.samples.size
        if pos + n <= size:  # fast path: a view, no copy
            self._pos = pos + n
            return self.samples[pos : pos + n]
        out = np.zeros(n, dtype=np.int16)
        if size == 0:
            return out
        filled = 0
        while filled < n:
            if self._pos >= size:
                if not self.loop:
                    break
                self._pos = 0
            take = min(n - filled, size - self._pos)
            out[filled : filled + take] = self.samples[self._pos : self._pos + take]
            filled += take
            self._pos += take
        return out


class CallbackSource:
    """Asks a callable for each frame: ``func(n)`` must return ``n`` int16 samples."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[int], ArrayLike]) -> None:
        """Wrap ``func``."""
        self.func = func

    def read(self, n: int) -> NDArray[np.int16]:
        """Call the function; shorter results are zero-padded, longer ones cut."""
        data = np.asarray(self.func(n), dtype=np.int16).reshape(-1)
        if data.size == n:
            return data
        out = np.zeros(n, dtype=np.int16)
        out[: min(n, data.size)] = data[:n]
        return out


def _to_wire(samples: NDArray[np.int16]) -> bytes:
    # WAV data is little-endian regardless of the host.
    return samples.astype("<i2", copy=False).tobytes()


class WavSource(SamplesSource):
    """A WAV file played as a source: 8 kHz, mono, 16-bit PCM only (no resampling).

    Raises:
        WavFormatError: the file is missing, not a WAV file, or in another format;
            the message names the file and what was found.
    """

    __slots__ = ("path",)

    def __init__(self, path: str | os.PathLike[str], loop: bool = False) -> None:
        """Read the whole file into memory."""
        self.path = os.fspath(path)
        try:
            with wave.open(self.path, "rb") as wav:
                channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
                if (channels, width, rate) != (1, 2, WAV_RATE):
                    raise WavFormatError(
                        f"{self.path}: {rate} Hz, {channels} channel(s), {8 * width}-bit; "
                        f"only {WAV_RATE} Hz mono 16-bit PCM is supported (no resampling)"
                    )
                raw = wav.readframes(wav.getnframes())
        except WavFormatError:
            raise
        except (wave.Error, EOFError) as exc:
            raise WavFormatError(
                f"{self.path}: not a PCM WAV file this source can read ({exc})"
            ) from exc
        except OSError as exc:
            raise WavFormatError(f"{self.path}: cannot open WAV file ({exc})") from exc
        data = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.int16)
        super().__init__(data, loop)


class WavSink:
    """Writes received frames to an 8 kHz mono 16-bit WAV file; call it or ``write()``."""

    __slots__ = ("_file", "_wav", "path")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Create (truncate) the file.

        Raises:
            WavFormatError: the file cannot be created.
        """
        self.path = os.fspath(path)
        try:
            # Opened here, not by wave.open(path): a failed wave.open leaves a
            # half-built writer whose __del__ raises.
            self._file: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115
        except OSError as exc:
            raise WavFormatError(f"{self.path}: cannot create WAV file ({exc})") from exc
        wav = wave.open(self._file, "wb")  # noqa: SIM115 (closed in close())
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(WAV_RATE)
        self._wav: wave.Wave_write | None = wav

    def write(self, samples: ArrayLike) -> None:
        """Append int16 samples."""
        if self._wav is None:
            raise WavFormatError(f"{self.path}: WAV sink is closed")
        self._wav.writeframes(_to_wire(np.asarray(samples, dtype=np.int16)))

    __call__ = write

    def close(self) -> None:
        """Finish the header and close the file (idempotent)."""
        if self._wav is not None:
            self._wav.close()
            self._wav = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> WavSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
