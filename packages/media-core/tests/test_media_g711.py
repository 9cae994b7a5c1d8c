"""G.711: bit-exact with ITU-T G.191 on every input, C kernel equal to the numpy oracle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rvoip_media_core import (
    BACKEND,
    Codec,
    FrameCodec,
    alaw_decode,
    alaw_decode_bytes,
    alaw_encode,
    alaw_encode_bytes,
    decode,
    encode,
    ulaw_decode,
    ulaw_decode_bytes,
    ulaw_encode,
    ulaw_encode_bytes,
)
from rvoip_media_core import _g711_numpy as ref

ALL = np.arange(-32768, 32768, dtype=np.int16)


_CTYPE = {np.dtype(np.int16): "int16_t[]", np.dtype(np.uint8): "uint8_t[]"}


def _c(ffi: Any, func: Any, src: np.ndarray, out_dtype: Any) -> np.ndarray:
    src = np.ascontiguousarray(src)
    out = np.empty(src.shape, dtype=out_dtype)
    func(
        ffi.from_buffer(_CTYPE[src.dtype], src),
        ffi.from_buffer(_CTYPE[out.dtype], out),
        src.size,
    )
    return out


def _g191(corpora: Path, name: str) -> np.ndarray:
    return np.fromfile(corpora / "g711" / "itu-t-g191" / name, dtype="<i2")


def test_sweep_source_is_all_inputs(corpora: Path) -> None:
    assert np.array_equal(_g191(corpora, "sweep.src"), ALL)


@pytest.mark.parametrize(
    ("law", "vector"), [("ulaw", "sweep-r.u"), ("alaw", "sweep-r.a")], ids=["ulaw", "alaw"]
)
def test_encode_exhaustive_g191(corpora: Path, c_kernel: Any, law: str, vector: str) -> None:
    expected = _g191(corpora, vector).astype(np.uint8)
    ffi, lib = c_kernel
    np_enc = ref.ulaw_encode if law == "ulaw" else ref.alaw_encode
    assert np.array_equal(np_enc(ALL), expected)
    assert np.array_equal(_c(ffi, getattr(lib, f"rv_{law}_encode"), ALL, np.uint8), expected)
    assert np.array_equal(_c(ffi, getattr(lib, f"rv_{law}_encode_logic"), ALL, np.uint8), expected)
    public = ulaw_encode if law == "ulaw" else alaw_encode
    assert np.array_equal(public(ALL), expected)


@pytest.mark.parametrize(
    ("law", "codes", "decoded"),
    [("ulaw", "sweep-r.u", "sweep-r.reu"), ("alaw", "sweep-r.a", "sweep-r.rea")],
    ids=["ulaw", "alaw"],
)
def test_decode_exhaustive_g191(
    corpora: Path, c_kernel: Any, law: str, codes: str, decoded: str
) -> None:
    code_arr = _g191(corpora, codes).astype(np.uint8)
    expected = _g191(corpora, decoded).astype(np.int16)
    ffi, lib = c_kernel
    np_dec = ref.ulaw_decode if law == "ulaw" else ref.alaw_decode
    assert np.array_equal(np_dec(code_arr), expected)
    assert np.array_equal(_c(ffi, getattr(lib, f"rv_{law}_decode"), code_arr, np.int16), expected)
    public = ulaw_decode if law == "ulaw" else alaw_decode
    assert np.array_equal(public(code_arr), expected)


def test_g191_differs_from_audioop_where_documented(corpora: Path) -> None:
    """The 508 µ-law inputs where stdlib audioop deviates: we follow G.191."""
    rows = (corpora / "g711" / "audioop_vs_g191_ulaw_deviations.tsv").read_text().splitlines()
    inputs = np.array([int(r.split("\t")[0]) for r in rows[1:]], dtype=np.int16)
    g191 = np.array([int(r.split("\t")[2], 16) for r in rows[1:]], dtype=np.uint8)
    assert inputs.size == 508
    assert np.array_equal(ulaw_encode(inputs), g191)


def test_known_values() -> None:
    assert ulaw_encode(np.array([0, 32767, -32768, -1])).tolist() == [0xFF, 0x80, 0x00, 0x7F]
    assert alaw_encode(np.array([0, 32767, -32768])).tolist() == [0xD5, 0xAA, 0x2A]
    assert ulaw_decode(b"\x00\x7f\x80\xff").tolist() == [-32124, 0, 32124, 0]
    assert alaw_decode(b"\xd5\x55\xaa\x2a").tolist() == [8, -8, 32256, -32256]


def test_batch_shape_and_bytes_paths() -> None:
    rng = np.random.default_rng(7)
    frames = rng.integers(-32768, 32768, size=(5, 160), dtype=np.int16)
    for codec in Codec:
        codes = encode(codec, frames)
        assert codes.shape == (5, 160)
        assert np.array_equal(codes[3], encode(codec, frames[3]))
        assert decode(codec, codes).shape == (5, 160)
    raw = frames[0].tobytes()
    assert ulaw_encode_bytes(raw) == ulaw_encode(frames[0]).tobytes()
    assert alaw_encode_bytes(raw) == alaw_encode(frames[0]).tobytes()
    codes_b = ulaw_encode_bytes(raw)
    assert ulaw_decode_bytes(codes_b) == ulaw_decode(codes_b).tobytes()
    assert alaw_decode_bytes(codes_b) == alaw_decode(codes_b).tobytes()
    with pytest.raises(ValueError, match="even"):
        ulaw_encode_bytes(b"\x00")


def test_frame_codec_in_place() -> None:
    rng = np.random.default_rng(3)
    for codec in Codec:
        fc = FrameCodec(codec, samples=160, frames=4)
        fc.pcm[...] = rng.integers(-32768, 32768, size=(4, 160), dtype=np.int16)
        fc.encode()
        assert np.array_equal(fc.payload, encode(codec, fc.pcm))
        expected = decode(codec, fc.payload)
        fc.decode()
        assert np.array_equal(fc.pcm, expected)


pcm_arrays = hnp.arrays(
    np.int16,
    st.one_of(st.integers(0, 1024), st.tuples(st.integers(1, 8), st.just(160))),
)


@given(pcm_arrays)
def test_c_kernel_equals_numpy_oracle_encode(c_kernel: Any, pcm: np.ndarray) -> None:
    ffi, lib = c_kernel
    assert np.array_equal(_c(ffi, lib.rv_ulaw_encode, pcm, np.uint8), ref.ulaw_encode(pcm))
    assert np.array_equal(_c(ffi, lib.rv_alaw_encode, pcm, np.uint8), ref.alaw_encode(pcm))


@given(hnp.arrays(np.uint8, st.integers(0, 1024)))
def test_c_kernel_equals_numpy_oracle_decode(c_kernel: Any, codes: np.ndarray) -> None:
    ffi, lib = c_kernel
    assert np.array_equal(_c(ffi, lib.rv_ulaw_decode, codes, np.int16), ref.ulaw_decode(codes))
    assert np.array_equal(_c(ffi, lib.rv_alaw_decode, codes, np.int16), ref.alaw_decode(codes))
    assert ulaw_decode_bytes(codes.tobytes()) == ref.ulaw_decode(codes).tobytes()


@given(hnp.arrays(np.int16, st.integers(0, 400)))
def test_round_trip_is_idempotent(pcm: np.ndarray) -> None:
    """Re-encoding a decoded value reproduces it (µ-law's -0 code 0x7F re-encodes as +0)."""
    for codec in Codec:
        decoded = decode(codec, encode(codec, pcm))
        assert np.array_equal(decode(codec, encode(codec, decoded)), decoded)


def test_backend_is_reported() -> None:
    assert BACKEND in ("cffi", "numpy")


def test_bytes_paths_large_buffers() -> None:
    """Beyond the per-thread scratch buffer the bytes functions still convert exactly."""
    pcm = ALL.tobytes()
    assert ulaw_encode_bytes(pcm) == ref.ulaw_encode(ALL).tobytes()
    codes = alaw_encode_bytes(pcm)
    assert codes == ref.alaw_encode(ALL).tobytes()
    assert alaw_decode_bytes(codes) == ref.alaw_decode(np.frombuffer(codes, np.uint8)).tobytes()
    assert ulaw_decode_bytes(b"") == b""
    assert ulaw_encode_bytes(b"") == b""
