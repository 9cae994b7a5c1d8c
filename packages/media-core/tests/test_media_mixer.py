"""N-way mixer: each participant hears the others' sum, saturating."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rvoip_media_core import mix, mix_minus


def test_each_hears_the_others() -> None:
    frames = np.array([[1, 2], [10, 20], [100, 200]], dtype=np.int16)
    assert mix_minus(frames).tolist() == [[110, 220], [101, 202], [11, 22]]
    assert mix(frames).tolist() == [111, 222]


def test_saturation() -> None:
    frames = np.array([[30000], [30000], [30000], [-30000]], dtype=np.int16)
    assert mix_minus(frames)[:, 0].tolist() == [30000, 30000, 30000, 32767]
    assert mix(np.array([[-30000], [-30000]], dtype=np.int16)).tolist() == [-32768]


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="N × samples"):
        mix_minus(np.zeros(5, dtype=np.int16))
    with pytest.raises(ValueError, match="N × samples"):
        mix(np.zeros(5, dtype=np.int16))


@given(hnp.arrays(np.int16, st.tuples(st.integers(1, 6), st.integers(1, 40))))
def test_mix_minus_matches_exact_sum(frames: np.ndarray) -> None:
    wide = frames.astype(np.int64)
    expected = np.clip(wide.sum(axis=0) - wide, -32768, 32767)
    assert np.array_equal(mix_minus(frames), expected)
