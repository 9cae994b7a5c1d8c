"""N-way mixer: each participant hears the others' sum, saturating."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rvoip_media_core import Conference, mix, mix_minus


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


def test_conference_each_hears_the_others_once() -> None:
    conf = Conference()
    a, b, c = conf.join(), conf.join(), conf.join()
    assert conf.size == 3
    a.sink(np.full(160, 100, dtype=np.int16))
    b.sink(np.full(160, 20, dtype=np.int16))
    c.sink(np.full(160, 3, dtype=np.int16))
    assert a.source.read(160)[0] == 23
    assert b.read(160)[0] == 103
    assert c.read(160)[0] == 120
    # Nothing new received: everyone hears silence (no stale repeats).
    b.sink(np.full(160, 20, dtype=np.int16))
    assert a.read(160)[0] == 20
    assert b.read(160)[0] == 0
    conf.leave(b)
    conf.leave(b)
    assert conf.size == 2
    a.sink(np.full(160, 30000, dtype=np.int16))
    c.sink(np.full(160, 30000, dtype=np.int16))
    b.sink(np.full(160, 1, dtype=np.int16))  # gone: ignored
    assert a.read(160)[0] == 30000
    assert b.read(160)[0] == 0
    with pytest.raises(ValueError, match="160 samples"):
        a.read(320)


def test_participant_plugs_into_the_engine() -> None:
    from rvoip_media_core import AudioSource, MediaEngine

    conf = Conference()
    talker, listener = conf.join(), conf.join()
    assert isinstance(listener.source, AudioSource)
    engine = MediaEngine()

    class Session:
        def send_payload(self, *args: object) -> None: ...

        def set_packet_handler(self, handler: object) -> None: ...

        def statistics(self) -> None: ...

    stream = engine.add_stream(Session(), source=listener.source, sink=listener.sink)
    talker.sink(np.full(160, 1000, dtype=np.int16))
    ((_stream, payload, _ts, _marker),) = engine.begin_tick(0.0)
    assert _stream is stream
    assert payload != bytes([0xFF]) * 160  # the talker's audio, not silence
    engine.end_tick()
