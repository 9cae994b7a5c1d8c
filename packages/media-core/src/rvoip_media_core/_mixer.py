"""N-way conference mixing: each participant hears the sum of all the others."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rvoip_media_core._codecs import FrameResampler


def mix_minus(frames: ArrayLike) -> NDArray[np.int16]:
    """Mix ``N × samples`` int16 frames: row i of the result is the sum of all rows but i.

    Sums are exact in int32 and saturate to the int16 range at the end.
    """
    x = np.asarray(frames, dtype=np.int16)
    if x.ndim != 2:
        raise ValueError(f"expected N × samples frames, got shape {x.shape}")
    wide = x.astype(np.int32)
    total = wide.sum(axis=0, dtype=np.int32)
    result: NDArray[np.int16] = np.clip(total[None, :] - wide, -32768, 32767).astype(np.int16)
    return result


def mix(frames: ArrayLike) -> NDArray[np.int16]:
    """The saturated sum of ``N × samples`` int16 frames (what a listener-only party hears)."""
    x = np.asarray(frames, dtype=np.int16)
    if x.ndim != 2:
        raise ValueError(f"expected N × samples frames, got shape {x.shape}")
    total = x.astype(np.int32).sum(axis=0, dtype=np.int32)
    result: NDArray[np.int16] = np.clip(total, -32768, 32767).astype(np.int16)
    return result


class Conference:
    """An N-way conference on the media engine: each participant hears the others' sum.

    ``join()`` returns a participant whose ``sink`` takes the audio received from that
    party and whose ``source`` yields what it should hear (mix-minus, saturating). Use
    them as a stream's sink and source: the engine plays out after sending, so the mix
    of the frames received at tick t is sent at tick t+1 (one packet time of delay).

    Parties may run at other rates than the conference (a PCMU call at 8 kHz and an
    Opus call at 48 kHz): ``join(sample_rate=...)`` resamples that party's audio into
    the conference's rate and its mix back out (libsoxr, one more packet time of delay
    each way).
    """

    __slots__ = ("_frames", "_mixed", "_next_id", "_stale", "sample_rate", "samples")

    def __init__(self, samples: int = 160, sample_rate: int = 8000) -> None:
        """A conference with ``samples`` samples per frame (160 = 20 ms at 8 kHz)."""
        self.samples = samples
        self.sample_rate = sample_rate
        self._frames: dict[int, NDArray[np.int16] | None] = {}
        self._mixed: dict[int, NDArray[np.int16]] = {}
        self._next_id = 0
        self._stale = True

    @property
    def size(self) -> int:
        """Number of participants."""
        return len(self._frames)

    def join(self, sample_rate: int | None = None) -> Participant:
        """Add a participant (it hears silence until others speak).

        Args:
            sample_rate: the party's PCM rate (its stream's); default the conference's.
        """
        pid = self._next_id
        self._next_id += 1
        self._frames[pid] = None
        self._stale = True
        return Participant(self, pid, sample_rate or self.sample_rate)

    def leave(self, participant: Participant) -> None:
        """Remove a participant (idempotent)."""
        self._frames.pop(participant.id, None)
        self._mixed.pop(participant.id, None)
        self._stale = True

    def _put(self, pid: int, frame: NDArray[np.int16]) -> None:
        if pid in self._frames:
            self._frames[pid] = frame
            self._stale = True

    def _get(self, pid: int, n: int) -> NDArray[np.int16]:
        if n != self.samples:
            raise ValueError(f"conference frames are {self.samples} samples, asked for {n}")
        if self._stale:
            self._mix()
        out = self._mixed.get(pid)
        return out if out is not None else np.zeros(n, dtype=np.int16)

    def _mix(self) -> None:
        pids = list(self._frames)
        silence = np.zeros(self.samples, dtype=np.int16)
        rows = []
        for pid in pids:
            frame = self._frames[pid]
            rows.append(silence if frame is None or frame.shape != (self.samples,) else frame)
            # Each received frame is heard once: a party that stops sending goes silent.
            self._frames[pid] = None
        mixed = mix_minus(np.stack(rows)) if rows else np.zeros((0, self.samples), np.int16)
        self._mixed = {pid: mixed[i] for i, pid in enumerate(pids)}
        self._stale = False


class Participant:
    """One party of a ``Conference``: ``sink`` for its received audio, ``source`` for its mix."""

    __slots__ = ("_in", "_out", "conference", "id", "sample_rate")

    def __init__(self, conference: Conference, pid: int, sample_rate: int = 8000) -> None:
        """Created by ``Conference.join``."""
        self.conference = conference
        self.id = pid
        self.sample_rate = sample_rate
        self._in: FrameResampler | None = None
        self._out: FrameResampler | None = None
        if sample_rate != conference.sample_rate:
            self._in = FrameResampler(sample_rate, conference.sample_rate)
            self._out = FrameResampler(conference.sample_rate, sample_rate)

    def sink(self, frame: NDArray[np.int16]) -> None:
        """Audio received from this party (one frame per packet time, at its rate)."""
        if self._in is not None:
            frame = self._in.process(frame)
        self.conference._put(self.id, frame)

    def read(self, n: int) -> NDArray[np.int16]:
        """What this party hears: everybody else's latest frames, summed (at its rate)."""
        if self._out is None:
            return self.conference._get(self.id, n)
        conf_n = n * self.conference.sample_rate // self.sample_rate
        return self._out.process(self.conference._get(self.id, conf_n))

    @property
    def source(self) -> Participant:
        """The participant as an ``AudioSource`` (it has ``read``)."""
        return self
