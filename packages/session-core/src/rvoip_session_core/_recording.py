"""Two-sided call recording to WAV: stereo (ours left, theirs right) or a mono mix.

The recorder is fed by the call's media from inside the engine's packet-time step: each
frame we send (``local``) and each frame we decode (``remote``), both at the call's PCM
rate. Frames are paired in order, buffered and written about every half second with
``writeframesraw`` (the stdlib's ``writeframes`` seeks back to patch the header on every
call); the header gets its final sizes on ``close``. No task, no thread, no per-frame I/O.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import wave
from collections.abc import Callable
from typing import Literal

import attrs
import numpy as np
from numpy.typing import NDArray

from rvoip_session_core._errors import MediaError
from rvoip_session_core._types import SessionId

log = logging.getLogger("rvoip_session_core.media")

RecordingMode = Literal["stereo", "mix"]
RECORDING_MODES: tuple[RecordingMode, ...] = ("stereo", "mix")

DEFAULT_MAX_RECORDING_SECONDS = 3600.0
"""Default bound of one recording (an hour: 115 MB stereo at 8 kHz, 690 MB at 48 kHz)."""

_FLUSH_SECONDS = 0.5
_MAX_SKEW_SECONDS = 1.0
"""When one side's frames stop coming (its stream removed, a long hold), the other side
is written with silence opposite it once it is this far ahead."""


@attrs.define(eq=False)
class CallRecorder:
    """Writes one call's two directions to a WAV file.

    Args:
        session_id: the call (for messages).
        path: the WAV file to create.
        mode: ``"stereo"`` (local left, remote right) or ``"mix"`` (both summed, mono).
        rate_of: the call's current PCM rate, read when the first frame arrives (a call
            recorded from before its answer learns its codec's rate then).
        max_seconds: recording stops (the file is closed) after this much audio.
    """

    session_id: SessionId
    path: str
    mode: RecordingMode
    rate_of: Callable[[], int]
    max_seconds: float = DEFAULT_MAX_RECORDING_SECONDS
    _wav: wave.Wave_write | None = attrs.field(init=False, default=None)
    _rate: int = attrs.field(init=False, default=0)
    _local: collections.deque[NDArray[np.int16]] = attrs.field(
        init=False, factory=collections.deque
    )
    _remote: collections.deque[NDArray[np.int16]] = attrs.field(
        init=False, factory=collections.deque
    )
    _local_count: int = attrs.field(init=False, default=0)
    _remote_count: int = attrs.field(init=False, default=0)
    _chunks: list[bytes] = attrs.field(init=False, factory=list)
    _chunk_frames: int = attrs.field(init=False, default=0)
    _written: int = attrs.field(init=False, default=0)
    _closed: bool = attrs.field(init=False, default=False)

    def __attrs_post_init__(self) -> None:
        if self.mode not in RECORDING_MODES:
            raise MediaError(
                f"recording mode {self.mode!r}: use 'stereo' or 'mix'", session_id=self.session_id
            )
        # Create the file now so a bad path fails the caller, not the engine later.
        try:
            with open(self.path, "wb"):
                pass
        except OSError as exc:
            raise MediaError(
                f"cannot record to {self.path!r}: {exc.strerror or exc}",
                session_id=self.session_id,
            ) from None

    @property
    def closed(self) -> bool:
        """True once the file is complete (stopped, the call ended, or the limit hit)."""
        return self._closed

    @property
    def seconds(self) -> float:
        """How much audio is in the file so far (written or buffered)."""
        if self._rate == 0:
            return 0.0
        return (self._written + self._chunk_frames) / self._rate

    def local(self, frame: NDArray[np.int16]) -> None:
        """A frame we sent (copied: the caller's buffer may be reused)."""
        if not self._closed:
            self._local.append(np.array(frame, dtype=np.int16))
            self._local_count += len(frame)
            self._pair()

    def remote(self, frame: NDArray[np.int16]) -> None:
        """A frame we received and decoded."""
        if not self._closed:
            self._remote.append(np.array(frame, dtype=np.int16))
            self._remote_count += len(frame)
            self._pair()

    def _pair(self) -> None:
        if self._rate == 0:
            self._open()
            if self._closed:
                return
        skew = int(self._rate * _MAX_SKEW_SECONDS)
        while True:
            if self._local and self._remote:
                left, right = self._take(self._local), self._take(self._remote)
                n = min(len(left), len(right))
                self._put_back(self._local, left[n:])
                self._put_back(self._remote, right[n:])
                left, right = left[:n], right[:n]
            elif self._local and self._local_count - self._remote_count > skew:
                left = self._take(self._local)
                right = np.zeros_like(left)
                self._remote_count += len(left)
            elif self._remote and self._remote_count - self._local_count > skew:
                right = self._take(self._remote)
                left = np.zeros_like(right)
                self._local_count += len(right)
            else:
                return
            if not self._emit(left, right):
                self.close()  # the limit: the file is complete
                return

    @staticmethod
    def _take(queue: collections.deque[NDArray[np.int16]]) -> NDArray[np.int16]:
        return queue.popleft()

    @staticmethod
    def _put_back(queue: collections.deque[NDArray[np.int16]], rest: NDArray[np.int16]) -> None:
        if len(rest):
            queue.appendleft(rest)

    def _open(self) -> None:
        self._rate = int(self.rate_of())
        try:
            wav = wave.open(self.path, "wb")  # noqa: SIM115 (open for the call's life)
            wav.setnchannels(2 if self.mode == "stereo" else 1)
            wav.setsampwidth(2)
            wav.setframerate(self._rate)
        except (OSError, wave.Error) as exc:
            log.warning("recording of call %s to %s failed: %s", self.session_id, self.path, exc)
            self._closed = True
            return
        self._wav = wav

    def _emit(self, left: NDArray[np.int16], right: NDArray[np.int16]) -> bool:
        """Buffer a pair of equal-length frames; False once ``max_seconds`` is reached."""
        room = int(self.max_seconds * self._rate) - self._written - self._chunk_frames
        if room <= 0:
            return False
        left, right = left[:room], right[:room]
        if self.mode == "stereo":
            data = np.empty(2 * len(left), dtype="<i2")
            data[0::2] = left
            data[1::2] = right
        else:
            mixed = left.astype(np.int32) + right.astype(np.int32)
            data = np.clip(mixed, -32768, 32767).astype("<i2")
        self._chunks.append(data.tobytes())
        self._chunk_frames += len(left)
        if self._chunk_frames >= self._rate * _FLUSH_SECONDS:
            self._flush()
        return self._wav is not None

    def _flush(self) -> None:
        wav = self._wav
        if wav is None or not self._chunks:
            return
        try:
            wav.writeframesraw(b"".join(self._chunks))
        except OSError as exc:
            log.warning("recording of call %s to %s failed: %s", self.session_id, self.path, exc)
            self._chunks.clear()
            self._chunk_frames = 0
            self._wav = None
            self._closed = True
            with contextlib.suppress(OSError, wave.Error):
                wav.close()
            return
        self._written += self._chunk_frames
        self._chunks.clear()
        self._chunk_frames = 0

    def close(self) -> None:
        """Finish the file: what is buffered, then the header's sizes. Idempotent.

        Whatever one side has beyond the other is written against silence.
        """
        if self._closed:
            return
        if self._wav is not None:
            # Whatever one side has beyond the other is written against silence.
            while self._local or self._remote:
                if self._local:
                    left = self._take(self._local)
                    right = np.zeros_like(left)
                else:
                    right = self._take(self._remote)
                    left = np.zeros_like(right)
                if not self._emit(left, right):
                    break
        self._local.clear()
        self._remote.clear()
        if self.closed:
            return  # a write failed meanwhile and closed the file
        self._closed = True
        self._flush()
        wav, self._wav = self._wav, None
        if wav is None:
            # No frame ever came: leave a valid, empty WAV at the call's rate.
            try:
                with wave.open(self.path, "wb") as empty:
                    empty.setnchannels(2 if self.mode == "stereo" else 1)
                    empty.setsampwidth(2)
                    empty.setframerate(int(self.rate_of()))
            except (OSError, wave.Error) as exc:
                log.warning("recording of call %s to %s: %s", self.session_id, self.path, exc)
            return
        try:
            wav.close()
        except (OSError, wave.Error) as exc:
            log.warning("recording of call %s to %s: %s", self.session_id, self.path, exc)
