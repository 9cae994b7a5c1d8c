"""G.711 µ-law / A-law encode and decode, bit-exact with ITU-T G.191.

Every function works on whole buffers and on batches (any array shape, e.g.
N frames × 160 samples in one call). The C kernel is used when ``BACKEND`` is
``"cffi"``; the numpy functions in ``_g711_numpy`` are the fallback and oracle.
"""

from __future__ import annotations

import enum
import functools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rvoip_media_core import _g711_numpy
from rvoip_media_core._backend import BACKEND, ffi, lib


class Codec(enum.Enum):
    """The G.711 laws, valued by their static RTP payload type (RFC 3551 §6)."""

    PCMU = 0
    PCMA = 8

    @property
    def payload_type(self) -> int:
        """The static RTP payload type of this codec."""
        return self.value


# The C kernel is handed ``src.size`` elements of a C-contiguous copy and an ``out`` it
# allocates itself with the same shape: no caller array is ever written through.
# np.asarray(order="C") keeps a 0-d input 0-d (ascontiguousarray made it 1-D).


def _as_pcm(pcm: ArrayLike) -> NDArray[np.int16]:
    return np.asarray(pcm, dtype=np.int16, order="C")


def _as_codes(codes: ArrayLike | bytes) -> NDArray[np.uint8]:
    if isinstance(codes, bytes | bytearray | memoryview):
        return np.frombuffer(codes, dtype=np.uint8)
    return np.asarray(codes, dtype=np.uint8, order="C")


def _make_encoder(
    c_func: Any, np_func: Callable[[NDArray[np.int16]], NDArray[np.uint8]]
) -> Callable[[ArrayLike], NDArray[np.uint8]]:
    if BACKEND == "cffi":

        def encode(pcm: ArrayLike) -> NDArray[np.uint8]:
            src = _as_pcm(pcm)
            out = np.empty(src.shape, dtype=np.uint8)
            c_func(ffi.from_buffer("int16_t[]", src), ffi.from_buffer("uint8_t[]", out), src.size)
            return out

        return encode

    def encode_np(pcm: ArrayLike) -> NDArray[np.uint8]:
        return np_func(_as_pcm(pcm))

    return encode_np


def _make_decoder(
    c_func: Any, np_func: Callable[[NDArray[np.uint8]], NDArray[np.int16]]
) -> Callable[[ArrayLike | bytes], NDArray[np.int16]]:
    if BACKEND == "cffi":

        def decode(codes: ArrayLike | bytes) -> NDArray[np.int16]:
            src = _as_codes(codes)
            out = np.empty(src.shape, dtype=np.int16)
            c_func(ffi.from_buffer("uint8_t[]", src), ffi.from_buffer("int16_t[]", out), src.size)
            return out

        return decode

    def decode_np(codes: ArrayLike | bytes) -> NDArray[np.int16]:
        return np_func(_as_codes(codes))

    return decode_np


ulaw_encode = _make_encoder(lib and lib.rv_ulaw_encode, _g711_numpy.ulaw_encode)
ulaw_encode.__doc__ = "int16 PCM (any shape) to µ-law codes of the same shape (G.191)."
alaw_encode = _make_encoder(lib and lib.rv_alaw_encode, _g711_numpy.alaw_encode)
alaw_encode.__doc__ = "int16 PCM (any shape) to A-law codes of the same shape (G.191)."
ulaw_decode = _make_decoder(lib and lib.rv_ulaw_decode, _g711_numpy.ulaw_decode)
ulaw_decode.__doc__ = "µ-law codes (array or bytes) to int16 PCM of the same shape (G.191)."
alaw_decode = _make_decoder(lib and lib.rv_alaw_decode, _g711_numpy.alaw_decode)
alaw_decode.__doc__ = "A-law codes (array or bytes) to int16 PCM of the same shape (G.191)."


_SCRATCH_BYTES = 8192


class _Scratch(threading.local):
    """Per-thread output buffer of the bytes functions (cffi releases the GIL in C)."""

    def __init__(self) -> None:
        self.buf: Any = ffi.new("char[]", _SCRATCH_BYTES) if ffi is not None else None


_scratch = _Scratch()


def _make_encode_bytes(
    c_name: str, np_func: Callable[[NDArray[np.int16]], NDArray[np.uint8]]
) -> Callable[[bytes], bytes]:
    def encode_bytes_np(pcm: bytes) -> bytes:
        if len(pcm) & 1:
            raise ValueError(f"16-bit PCM needs an even byte count, got {len(pcm)}")
        return np_func(np.frombuffer(pcm, dtype=np.int16)).tobytes()

    if BACKEND != "cffi":
        return encode_bytes_np
    c_func = getattr(lib, c_name)
    unpack = ffi.unpack
    scratch = _scratch

    def encode_bytes(pcm: bytes) -> bytes:
        size = len(pcm)
        if size & 1 or size > 2 * _SCRATCH_BYTES:  # odd (error) or large: general path
            return encode_bytes_np(pcm) if size & 1 else _g711_big(c_func, pcm, size >> 1, 1)
        out = scratch.buf
        c_func(pcm, out, size >> 1)
        result: bytes = unpack(out, size >> 1)
        return result

    return encode_bytes


def _make_decode_bytes(
    c_name: str, np_func: Callable[[NDArray[np.uint8]], NDArray[np.int16]]
) -> Callable[[bytes], bytes]:
    def decode_bytes_np(codes: bytes) -> bytes:
        return np_func(np.frombuffer(codes, dtype=np.uint8)).tobytes()

    if BACKEND != "cffi":
        return decode_bytes_np
    c_func = getattr(lib, c_name)
    unpack = ffi.unpack
    scratch = _scratch

    def decode_bytes(codes: bytes) -> bytes:
        n = len(codes)
        if 2 * n > _SCRATCH_BYTES:
            return _g711_big(c_func, codes, n, 2)
        out = scratch.buf
        c_func(codes, out, n)
        result: bytes = unpack(out, 2 * n)
        return result

    return decode_bytes


def _g711_big(c_func: Any, data: bytes, n: int, out_per_item: int) -> bytes:
    out = ffi.new("char[]", max(1, n * out_per_item))
    c_func(data, out, n)
    result: bytes = ffi.unpack(out, n * out_per_item)
    return result


ulaw_encode_bytes = _make_encode_bytes("rv_ulaw_encode_b", _g711_numpy.ulaw_encode)
"""Native-endian 16-bit PCM bytes to µ-law bytes (bytes in, bytes out)."""
alaw_encode_bytes = _make_encode_bytes("rv_alaw_encode_b", _g711_numpy.alaw_encode)
"""Native-endian 16-bit PCM bytes to A-law bytes."""
ulaw_decode_bytes = _make_decode_bytes("rv_ulaw_decode_b", _g711_numpy.ulaw_decode)
"""µ-law bytes to native-endian 16-bit PCM bytes."""
alaw_decode_bytes = _make_decode_bytes("rv_alaw_decode_b", _g711_numpy.alaw_decode)
"""A-law bytes to native-endian 16-bit PCM bytes."""

# The functions are built by the factories above: give them the docstrings help() shows.
ulaw_encode_bytes.__doc__ = "Encode native-endian 16-bit PCM bytes to µ-law bytes."
alaw_encode_bytes.__doc__ = "Encode native-endian 16-bit PCM bytes to A-law bytes."
ulaw_decode_bytes.__doc__ = "Decode µ-law bytes to native-endian 16-bit PCM bytes."
alaw_decode_bytes.__doc__ = "Decode A-law bytes to native-endian 16-bit PCM bytes."


def encode(codec: Codec, pcm: ArrayLike) -> NDArray[np.uint8]:
    """Encode int16 PCM (any shape) with ``codec``."""
    return ulaw_encode(pcm) if codec is Codec.PCMU else alaw_encode(pcm)


def decode(codec: Codec, codes: ArrayLike | bytes) -> NDArray[np.int16]:
    """Decode G.711 codes (any shape, or bytes) with ``codec``."""
    return ulaw_decode(codes) if codec is Codec.PCMU else alaw_decode(codes)


class FrameCodec:
    """A G.711 coder with preallocated frame buffers: the lowest per-call overhead.

    Write PCM into ``pcm`` (int16, ``frames × samples``), call ``encode()`` and read
    ``payload`` (uint8, same shape); or fill ``payload`` and call ``decode()``. The
    kernel pointers are bound once at construction, so a call is one C call.
    """

    __slots__ = ("_keep", "codec", "decode", "encode", "payload", "pcm")

    def __init__(self, codec: Codec, samples: int = 160, frames: int = 1) -> None:
        """Allocate buffers for ``frames`` frames of ``samples`` samples each."""
        self.codec = codec
        self.pcm: NDArray[np.int16] = np.zeros((frames, samples), dtype=np.int16)
        self.payload: NDArray[np.uint8] = np.zeros((frames, samples), dtype=np.uint8)
        n = frames * samples
        ulaw = codec is Codec.PCMU
        self.encode: Callable[[], object]
        self.decode: Callable[[], object]
        if BACKEND == "cffi":
            pcm_ptr = ffi.from_buffer("int16_t[]", self.pcm)
            pay_ptr = ffi.from_buffer("uint8_t[]", self.payload)
            enc_job = ffi.new("rv_g711_job_t *")
            enc_job.src, enc_job.dst, enc_job.n = pcm_ptr, pay_ptr, n
            enc_job.op = 0 if ulaw else 1
            dec_job = ffi.new("rv_g711_job_t *")
            dec_job.src, dec_job.dst, dec_job.n = pay_ptr, pcm_ptr, n
            dec_job.op = 2 if ulaw else 3
            # The jobs hold raw pointers: keep the buffers' cdata alive with them.
            self._keep: tuple[Any, ...] = (pcm_ptr, pay_ptr, enc_job, dec_job)
            # One pointer argument per call: the cheapest cffi call there is.
            self.encode = functools.partial(lib.rv_g711_run, enc_job)
            self.decode = functools.partial(lib.rv_g711_run, dec_job)
        else:
            np_enc = _g711_numpy.ulaw_encode if ulaw else _g711_numpy.alaw_encode
            np_dec = _g711_numpy.ulaw_decode if ulaw else _g711_numpy.alaw_decode
            pcm_arr, pay_arr = self.pcm, self.payload

            def enc_np() -> None:
                pay_arr[...] = np_enc(pcm_arr)

            def dec_np() -> None:
                pcm_arr[...] = np_dec(pay_arr)

            self._keep = ()
            self.encode, self.decode = enc_np, dec_np
