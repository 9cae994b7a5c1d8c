"""G.711 in numpy: the reference (oracle) and fallback of the C kernel, per ITU-T G.191."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

# 1 + bit length of v for v in 0..127: G.191's segment search as a lookup.
_SEG_OF = np.array([1 + int(v).bit_length() for v in range(128)], dtype=np.int32)


def _ulaw_expand_table() -> NDArray[np.int16]:
    # G.191 ulaw_expand
    code = np.arange(256, dtype=np.int32)
    sign = np.where(code < 0x80, -1, 1)
    mantissa = ~code
    exponent = (mantissa >> 4) & 0x07
    step = 4 << (exponent + 1)
    mantissa = mantissa & 0x0F
    result: NDArray[np.int16] = (
        sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * 33)
    ).astype(np.int16)
    return result


def _alaw_expand_table() -> NDArray[np.int16]:
    # G.191 alaw_expand
    code = np.arange(256, dtype=np.int32)
    ix = (code ^ 0x55) & 0x7F
    iexp = ix >> 4
    mant = ix & 0x0F
    mant = np.where(iexp > 0, mant + 16, mant)
    mant = (mant << 4) + 0x08
    mant = np.where(iexp > 1, mant << np.maximum(iexp - 1, 0), mant)
    return np.where(code > 127, mant, -mant).astype(np.int16)


ULAW_DECODE_TABLE = _ulaw_expand_table()
ALAW_DECODE_TABLE = _alaw_expand_table()


def ulaw_encode(pcm: NDArray[np.int16]) -> NDArray[np.uint8]:
    """G.191 ulaw_compress over an int16 array of any shape."""
    x = pcm.astype(np.int32)
    # G.191: the magnitude of a negative sample is its one's complement.
    absno = np.minimum(np.where(x < 0, ~x, x) >> 2, 0x1FFF - 33) + 33
    segno = _SEG_OF[absno >> 6]
    code = ((8 - segno) << 4) | (0x0F - ((absno >> segno) & 0x0F))
    result: NDArray[np.uint8] = np.where(x >= 0, code | 0x80, code).astype(np.uint8)
    return result


def alaw_encode(pcm: NDArray[np.int16]) -> NDArray[np.uint8]:
    """G.191 alaw_compress over an int16 array of any shape."""
    x = pcm.astype(np.int32)
    ix = np.where(x < 0, ~x, x) >> 4
    # Segment = 1 + number of halvings until ix <= 31 (for ix > 15).
    big = ix > 15
    iexp = np.where(big, _SEG_OF[np.minimum(ix >> 5, 127)], 0)
    mant = np.where(big, ((ix >> np.maximum(iexp - 1, 0)) - 16) + (iexp << 4), ix)
    code = np.where(x >= 0, mant | 0x80, mant)
    return (code ^ 0x55).astype(np.uint8)


def ulaw_decode(codes: NDArray[np.uint8]) -> NDArray[np.int16]:
    """µ-law codes to int16 PCM via the 256-entry G.191 table."""
    return ULAW_DECODE_TABLE[codes]


def alaw_decode(codes: NDArray[np.uint8]) -> NDArray[np.int16]:
    """A-law codes to int16 PCM via the 256-entry G.191 table."""
    return ALAW_DECODE_TABLE[codes]
