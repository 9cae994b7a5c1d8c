"""Codec cost per 20 ms frame: encode + decode, unbatched and batched, for every codec.

    .venv/bin/python tools/bench/codecs.py [--frames 2000] [--batch 100] [--repeat 5]

Unbatched: one stream's coder, one frame per call (what the engine does for G.722 and
Opus streams, which keep per-stream state). Batched: ``--batch`` frames per call —
for G.711 one kernel call over a batch × 160 array (the engine's path: all PCMU
streams of a tick in one call); G.722 and Opus are stateful per stream, so a "batch"
is ``--batch`` coders each doing one frame (the cost per frame is the figure).
A 1 kHz tone at the codec's rate is the input. Best of ``--repeat`` runs, µs per frame.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from rvoip_media_core import (
    Codec,
    ToneGenerator,
    available_codecs,
    decode,
    encode,
    make_codec,
    opus_version,
)


def best_us(func: Callable[[], None], frames: int, repeat: int) -> float:
    """Best µs per frame of ``func`` (which processes ``frames`` frames)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times) / frames * 1e6


def unbatched(name: str, frames: int, repeat: int) -> tuple[float, float]:
    coder = make_codec(name)
    n = coder.info.pcm_samples(20)
    pcm = [ToneGenerator(1000, 0.3, coder.info.sample_rate).read(n) for _ in range(50)]
    payloads = [coder.encode(f) for f in pcm]

    def enc() -> None:
        for i in range(frames):
            coder.encode(pcm[i % 50])

    def dec() -> None:
        for i in range(frames):
            coder.decode(payloads[i % 50])

    return best_us(enc, frames, repeat), best_us(dec, frames, repeat)


def batched(name: str, batch: int, repeat: int) -> tuple[float, float]:
    if name in ("PCMU", "PCMA"):
        law = Codec.PCMU if name == "PCMU" else Codec.PCMA
        pcm = np.tile(ToneGenerator(1000, 0.3).read(160), (batch, 1))
        codes = encode(law, pcm)
        rounds = 200
        return (
            best_us(lambda: [encode(law, pcm) for _ in range(rounds)], batch * rounds, repeat),
            best_us(lambda: [decode(law, codes) for _ in range(rounds)], batch * rounds, repeat),
        )
    coders = [make_codec(name) for _ in range(batch)]
    n = coders[0].info.pcm_samples(20)
    frame = ToneGenerator(1000, 0.3, coders[0].info.sample_rate).read(n)
    payloads = [c.encode(frame) for c in coders]
    rounds = 10

    def enc() -> None:
        for _ in range(rounds):
            for c in coders:
                c.encode(frame)

    def dec() -> None:
        for _ in range(rounds):
            for c, p in zip(coders, payloads, strict=True):
                c.decode(p)

    return best_us(enc, batch * rounds, repeat), best_us(dec, batch * rounds, repeat)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000, help="frames per unbatched run")
    parser.add_argument("--batch", type=int, default=100, help="frames (streams) per batch")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"codecs: {', '.join(available_codecs())}; libopus: {opus_version()}")
    header = (
        f"{'codec':6} {'rate':>6} {'enc':>8} {'dec':>8} {'enc+dec':>8}"
        f" | {'batched enc':>11} {'dec':>8} {'enc+dec':>8}   (µs per 20 ms frame)"
    )
    print(header)
    for name in available_codecs():
        rate = make_codec(name).info.sample_rate
        e1, d1 = unbatched(name, args.frames, args.repeat)
        e2, d2 = batched(name, args.batch, args.repeat)
        print(
            f"{name:6} {rate:>6} {e1:8.2f} {d1:8.2f} {e1 + d1:8.2f}"
            f" | {e2:11.2f} {d2:8.2f} {e2 + d2:8.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
