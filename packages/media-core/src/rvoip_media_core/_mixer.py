"""N-way conference mixing: each participant hears the sum of all the others."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


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
