"""Jitter buffer throughput: packets/s through insert + pop.

Paths: the C kernel in batch over many streams (``insert_many``/``pop_many``: one
packet into / one frame out of every stream's buffer per call, as the media engine
ticks), the C kernel in batch over one stream (``insert_batch``/``pop_batch``), the C
kernel one packet per call (``insert``/``pop``), and the pure-Python oracle. Each
stream is realistic: 2 % loss, reordering (up to 1.5 frames of jitter), 1 % duplicates.

    .venv/bin/python tools/bench/jitter.py [--packets 1000000] [--streams 1000]

Times are CPU time of this process (``time.process_time``): steady on a shared machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rvoip_media_core import JitterBuffer, insert_many, make_handles, pop_many


def make_stream(n: int, seed: int = 1) -> tuple[np.ndarray, ...]:
    """Sequence numbers, timestamps, payloads, lengths and arrivals of ``n`` packets."""
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    arrival = k * 0.02 + rng.random(n) * 0.03  # up to 1.5 frames of jitter: reordering
    keep = rng.random(n) >= 0.02
    k, arrival = k[keep], arrival[keep]
    dup = rng.random(k.size) < 0.01
    k = np.concatenate([k, k[dup]])
    arrival = np.concatenate([arrival, arrival[dup] + 0.001])
    order = np.argsort(arrival, kind="stable")
    k, arrival = k[order], arrival[order]
    seqs = (k & 0xFFFF).astype(np.uint16)
    tss = ((k * 160) & 0xFFFFFFFF).astype(np.uint32)
    payloads = np.zeros((k.size, 320), dtype=np.uint8)
    payloads[:, 0] = k & 0xFF
    lens = np.full(k.size, 160, dtype=np.uint16)
    return seqs, tss, payloads, lens, arrival


def bench_batch(stream: tuple[np.ndarray, ...], batch: int) -> tuple[float, int]:
    seqs, tss, payloads, lens, arrivals = stream
    jb = JitterBuffer(backend="cffi")
    n = seqs.size
    start = time.process_time()
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        jb.insert_batch(seqs[lo:hi], tss[lo:hi], payloads[lo:hi], lens[lo:hi], arrivals[lo:hi])
        jb.pop_batch(hi - lo)
    elapsed = time.process_time() - start
    return elapsed, jb.stats().played


def bench_many(stream: tuple[np.ndarray, ...], streams: int) -> tuple[float, int, int]:
    """Every tick: one packet into each of ``streams`` buffers, then one pop from each."""
    seqs, tss, payloads, _lens, arrivals = stream
    ticks = seqs.size // streams
    buffers = [JitterBuffer(backend="cffi") for _ in range(streams)]
    handles = make_handles(buffers)
    out = np.zeros((streams, 320), dtype=np.uint8)
    out_lens = np.zeros(streams, dtype=np.int32)
    # Stream j gets the same packet sequence, offset in sequence number space.
    offsets = (np.arange(streams) * 4099).astype(np.uint16)
    # Inputs laid out per tick beforehand: the timed loop is the two kernel calls.
    seq_2d = np.ascontiguousarray(seqs[:ticks, None] + offsets[None, :], dtype=np.uint16)
    ts_2d = np.ascontiguousarray(np.repeat(tss[:ticks, None], streams, axis=1))
    arr_2d = np.ascontiguousarray(np.repeat(arrivals[:ticks, None], streams, axis=1))
    pay = np.ascontiguousarray(np.broadcast_to(payloads[0], (streams, 320)))
    len_1d = np.full(streams, 160, dtype=np.uint16)
    start = time.process_time()
    for t in range(ticks):
        insert_many(buffers, seq_2d[t], ts_2d[t], pay, len_1d, arr_2d[t], handles)
        pop_many(buffers, out, out_lens, handles)
    elapsed = time.process_time() - start
    return elapsed, ticks * streams, sum(b.stats().played for b in buffers)


def bench_single(stream: tuple[np.ndarray, ...], backend: str, limit: int) -> tuple[float, int]:
    seqs, tss, payloads, _lens, arrivals = stream
    n = min(limit, seqs.size)
    seq_l = seqs[:n].tolist()
    ts_l = tss[:n].tolist()
    arr_l = arrivals[:n].tolist()
    pay_l = [payloads[i, :160].tobytes() for i in range(n)]
    jb = JitterBuffer(backend=backend)
    insert, pop = jb.insert, jb.pop
    start = time.process_time()
    for i in range(n):
        insert(seq_l[i], ts_l[i], pay_l[i], arr_l[i])
        pop()
    elapsed = time.process_time() - start
    return elapsed, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=16, help="one-stream batch size")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--single", type=int, default=200_000, help="packets for per-call runs")
    args = parser.parse_args()
    stream = make_stream(args.packets)
    n = stream[0].size
    print(f"jitter buffer: {n} packets (2 % loss, reorder, 1 % duplicates), insert + pop each")
    elapsed, count, played = bench_many(stream, args.streams)
    print(
        f"  C kernel, {args.streams} streams per call: {count / elapsed / 1e6:6.2f} M packets/s "
        f"({elapsed * 1e9 / count:6.1f} ns/packet; {played} frames played)"
    )
    elapsed, played = bench_batch(stream, args.batch)
    print(
        f"  C kernel, one stream, batches of {args.batch}: {n / elapsed / 1e6:6.2f} M packets/s "
        f"({elapsed * 1e9 / n:6.1f} ns/packet; {played} frames played)"
    )
    for backend, label in (("cffi", "C kernel, one call each"), ("numpy", "pure-Python oracle")):
        elapsed, count = bench_single(stream, backend, args.single)
        print(
            f"  {label:24}: {count / elapsed / 1e6:6.2f} M packets/s "
            f"({elapsed * 1e9 / count:6.1f} ns/packet)"
        )


if __name__ == "__main__":
    main()
