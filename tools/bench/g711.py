"""G.711 throughput: the C kernel vs the numpy oracle vs stdlib audioop.

Prints samples/s per 160-sample frame (one call per 20 ms frame: call overhead
dominates) and per 1 M-sample buffer, for µ-law and A-law encode and decode.

    .venv/bin/python tools/bench/g711.py [--repeat 7] [--frame-calls 100000]

audioop was removed in Python 3.13; it is then skipped (audioop-lts is deliberately
not used). Timings are the best of ``--repeat`` runs (timeit).
"""

from __future__ import annotations

import argparse
import functools
import timeit
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from rvoip_media_core import Codec, FrameCodec
from rvoip_media_core import _g711_numpy as ref
from rvoip_media_core._backend import kernel

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop as _audioop

        audioop: Any = _audioop
    except ImportError:  # Python >= 3.13
        audioop = None


def best(func: Callable[[], object], number: int, repeat: int) -> float:
    """Best time per call in seconds."""
    return min(timeit.repeat(func, number=number, repeat=repeat)) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--frame-calls", type=int, default=100_000)
    parser.add_argument("--big-calls", type=int, default=20)
    args = parser.parse_args()
    ffi, lib = kernel()
    rng = np.random.default_rng(1)
    frame = (np.sin(np.arange(160) * 0.3) * 10000).astype(np.int16)
    frame_b = frame.tobytes()
    big = rng.integers(-32768, 32768, 1_000_000, dtype=np.int16)
    big_b = big.tobytes()
    big_codes = rng.integers(0, 256, 1_000_000, dtype=np.uint8)
    big_codes_b = big_codes.tobytes()
    big_out8 = np.empty(1_000_000, np.uint8)
    big_out16 = np.empty(1_000_000, np.int16)
    frame_codes = ref.ulaw_encode(frame)
    frame_codes_b = frame_codes.tobytes()
    print(f"G.711 benchmark (best of {args.repeat}); samples/s, higher is better")
    if audioop is None:
        print("audioop: not available on this Python (removed in 3.13) - skipped")
    for law in ("ulaw", "alaw"):
        codec = Codec.PCMU if law == "ulaw" else Codec.PCMA
        fc = FrameCodec(codec)
        fc.pcm[0] = frame
        fc.payload[0] = ref.ulaw_encode(frame) if law == "ulaw" else ref.alaw_encode(frame)
        c_enc = getattr(lib, f"rv_{law}_encode")
        c_enc_logic = getattr(lib, f"rv_{law}_encode_logic")
        c_dec = getattr(lib, f"rv_{law}_decode")
        np_enc = getattr(ref, f"{law}_encode")
        np_dec = getattr(ref, f"{law}_decode")
        from rvoip_media_core import _g711

        enc_bytes = _g711._make_encode_bytes(f"rv_{law}_encode_b", np_enc)
        dec_bytes = _g711._make_decode_bytes(f"rv_{law}_decode_b", np_dec)
        big_src = ffi.from_buffer("int16_t[]", big)
        big_dst = ffi.from_buffer("uint8_t[]", big_out8)
        big_csrc = ffi.from_buffer("uint8_t[]", big_codes)
        big_cdst = ffi.from_buffer("int16_t[]", big_out16)
        rows: list[tuple[str, str, float, float]] = []  # (op, impl, per-frame s, per-1M s)

        def add(
            op: str,
            impl: str,
            per_frame: Callable[[], object] | None,
            per_big: Callable[[], object] | None,
        ) -> None:
            tf = best(per_frame, args.frame_calls, args.repeat) if per_frame else float("nan")
            tb = best(per_big, args.big_calls, args.repeat) if per_big else float("nan")
            rows.append((op, impl, tf, tb))  # noqa: B023 - used within this iteration

        add(
            "encode",
            "kernel FrameCodec (prealloc)",
            fc.encode,
            functools.partial(c_enc, big_src, big_dst, 1_000_000),
        )
        batch = FrameCodec(codec, samples=160, frames=500)
        batch.pcm[:] = frame
        batch.payload[:] = fc.payload[0]
        rows.append(
            (
                "encode",
                "kernel batch, 500 frames/call",
                best(batch.encode, 2000, args.repeat) / 500,
                float("nan"),
            )
        )
        add(
            "encode",
            "kernel bytes->bytes",
            functools.partial(enc_bytes, frame_b),
            functools.partial(enc_bytes, big_b),
        )
        add(
            "encode",
            "kernel bit logic (no table)",
            None,
            functools.partial(c_enc_logic, big_src, big_dst, 1_000_000),
        )
        add("encode", "numpy", functools.partial(np_enc, frame), functools.partial(np_enc, big))
        if audioop is not None:
            lin2 = audioop.lin2ulaw if law == "ulaw" else audioop.lin2alaw
            add(
                "encode",
                "audioop",
                functools.partial(lin2, frame_b, 2),
                functools.partial(lin2, big_b, 2),
            )
        add(
            "decode",
            "kernel FrameCodec (prealloc)",
            fc.decode,
            functools.partial(c_dec, big_csrc, big_cdst, 1_000_000),
        )
        rows.append(
            (
                "decode",
                "kernel batch, 500 frames/call",
                best(batch.decode, 2000, args.repeat) / 500,
                float("nan"),
            )
        )
        add(
            "decode",
            "kernel bytes->bytes",
            functools.partial(dec_bytes, frame_codes_b),
            functools.partial(dec_bytes, big_codes_b),
        )
        add(
            "decode",
            "numpy",
            functools.partial(np_dec, frame_codes),
            functools.partial(np_dec, big_codes),
        )
        if audioop is not None:
            to_lin = audioop.ulaw2lin if law == "ulaw" else audioop.alaw2lin
            add(
                "decode",
                "audioop",
                functools.partial(to_lin, frame_codes_b, 2),
                functools.partial(to_lin, big_codes_b, 2),
            )
        print(
            f"\n{law}: {'op':6} {'implementation':30} {'µs/frame':>9} {'Msamples/s (frame)':>19} "
            f"{'ms/1M':>8} {'Msamples/s (1M)':>16}"
        )
        for op, impl, tf, tb in rows:
            print(
                f"      {op:6} {impl:30} {tf * 1e6:9.3f} {160 / tf / 1e6:19.1f} "
                f"{tb * 1e3:8.3f} {1 / tb:16.1f}"
            )
        for op in ("encode", "decode"):
            # One frame per call (the batch row is shown separately above).
            kernel_f = min(
                r[2]
                for r in rows
                if r[0] == op and r[1].startswith("kernel") and "batch" not in r[1] and r[2] == r[2]
            )
            np_f = next(r[2] for r in rows if r[0] == op and r[1] == "numpy")
            line = f"      {op} per frame: kernel {np_f / kernel_f:.1f}x numpy"
            au = [r[2] for r in rows if r[0] == op and r[1] == "audioop"]
            if au:
                line += f", {au[0] / kernel_f:.1f}x audioop"
            print(line)


if __name__ == "__main__":
    main()
