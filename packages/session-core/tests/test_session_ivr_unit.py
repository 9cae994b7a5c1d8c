"""The IVR building blocks without a call: the digit collector, prompts, the recorder."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_media_core import ToneGenerator
from rvoip_session_core import CollectEnd, DigitCollector, MediaError
from rvoip_session_core._ivr import PromptSource
from rvoip_session_core._media import SourceSlot, samples_source
from rvoip_session_core._recording import CallRecorder
from rvoip_session_core._types import SessionId

KEYS = "0123456789*#ABCD"


def _collector(**kw: object) -> DigitCollector:
    args: dict[str, object] = {
        "max_digits": 4,
        "timeout": 5.0,
        "inter_digit_timeout": 2.0,
        "started": 100.0,
        "terminator": "#",
    }
    args.update(kw)
    return DigitCollector(**args)  # type: ignore[arg-type]


def test_collector_ends_at_max_digits_terminator_and_timeouts() -> None:
    c = _collector()
    assert c.deadline() == 105.0
    assert not c.feed("1", 101.0)
    assert c.deadline() == 103.0
    assert not c.feed("2", 102.5)
    assert not c.check(104.4)
    assert c.check(104.5)  # inter-digit timeout: 102.5 + 2
    assert c.result().digits == "12"
    assert c.result().end is CollectEnd.TIMEOUT

    c = _collector()
    c.feed("7", 101.0)
    assert c.feed("#", 101.5)
    assert (c.digits, c.end) == ("7", CollectEnd.TERMINATOR)
    c.feed("8", 101.6)  # after the end: ignored
    assert c.digits == "7"

    c = _collector(max_digits=2, initial="9")
    assert c.digits == "9"
    assert c.feed("3", 100.1)
    assert c.end is CollectEnd.MAX_DIGITS

    c = _collector()
    assert c.check(105.0)
    assert c.result().digits == ""
    c = _collector()
    c.call_ended()
    assert c.end is CollectEnd.ENDED


def test_collector_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_digits"):
        _collector(max_digits=0)
    with pytest.raises(ValueError, match="negative"):
        _collector(timeout=-1.0)
    with pytest.raises(ValueError, match="terminator"):
        _collector(terminator="x")


@given(
    presses=st.lists(
        st.tuples(st.sampled_from(KEYS), st.floats(0.0, 4.0, allow_nan=False)), max_size=20
    ),
    max_digits=st.integers(1, 6),
    terminator=st.sampled_from(["#", "*", ""]),
)
def test_collector_properties(
    presses: list[tuple[str, float]], max_digits: int, terminator: str
) -> None:
    """Whatever is pressed when: never more than max_digits, never the terminator, every
    digit collected was pressed before its deadline and in order, and once done it stays."""
    c = _collector(max_digits=max_digits, terminator=terminator, timeout=3.0)
    now = 100.0
    accepted: list[str] = []
    for key, gap in presses:
        now += gap
        before = c.deadline()
        was_done = c.done
        c.feed(key, now)
        if (
            not was_done
            and now < before
            and key != terminator
            and c.end is not (CollectEnd.TIMEOUT)
        ):
            accepted.append(key)
        if was_done:
            assert c.digits == "".join(accepted)
    assert c.digits == "".join(accepted)
    assert len(c.digits) <= max_digits
    assert not terminator or terminator not in c.digits
    if len(c.digits) == max_digits:
        assert c.end is CollectEnd.MAX_DIGITS
    assert c.check(now + 10.0)
    assert c.deadline() == float("inf")


def _finished(prompt: PromptSource) -> bool:
    return prompt.finished  # a call, so mypy does not narrow the property between reads


def test_prompt_finishes_with_its_source_and_at_a_rate() -> None:
    prompt = PromptSource(samples_source(np.ones(400, dtype=np.int16)))
    assert len(prompt.read(160)) == 160
    assert not _finished(prompt)
    prompt.read(160)
    last = prompt.read(160)
    assert _finished(prompt)
    assert (last[80:] == 0).all()
    assert (prompt.read(160) == 0).all()

    tone = PromptSource(ToneGenerator(440.0), max_samples=320)
    wide = tone.at_rate(16000)
    wide.read(320)
    assert not _finished(tone)
    wide.read(320)
    assert _finished(tone)  # shared state: the 16 kHz copy read 40 ms


def test_prompt_stop_gives_silence() -> None:
    prompt = PromptSource(ToneGenerator(440.0))
    assert prompt.read(160).any()
    prompt.stop()
    assert prompt.finished
    assert not prompt.read(160).any()


def test_slot_shows_sent_frames_to_its_tap() -> None:
    seen: list[int] = []
    slot = SourceSlot(source=samples_source(np.full(320, 4, dtype=np.int16)))
    slot.sent_tap = lambda frame: seen.append(int(frame[0]))
    assert (slot.read(160) == 4).all()
    slot.sent_tap = None
    slot.read(160)
    assert seen == [4]


def _frames(path: Path) -> tuple[int, int, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        return wav.getnchannels(), wav.getframerate(), data


def test_recorder_pairs_sides_in_stereo_and_mixes(tmp_path: Path) -> None:
    path = tmp_path / "s.wav"
    rec = CallRecorder(SessionId("c"), str(path), "stereo", lambda: 16000)
    for i in range(60):
        rec.local(np.full(320, i, dtype=np.int16))
        rec.remote(np.full(320, -i, dtype=np.int16))
    rec.local(np.full(320, 99, dtype=np.int16))  # one unpaired frame: against silence
    rec.close()
    channels, rate, data = _frames(path)
    assert (channels, rate) == (2, 16000)
    left, right = data[0::2], data[1::2]
    assert len(left) == 61 * 320
    assert (left[: 60 * 320] == np.repeat(np.arange(60), 320)).all()
    assert (right[: 60 * 320] == -np.repeat(np.arange(60), 320)).all()
    assert (left[-320:] == 99).all()
    assert (right[-320:] == 0).all()

    mixed = tmp_path / "m.wav"
    rec = CallRecorder(SessionId("c"), str(mixed), "mix", lambda: 8000)
    rec.local(np.full(160, 30000, dtype=np.int16))
    rec.remote(np.full(160, 10000, dtype=np.int16))
    rec.close()
    channels, _, data = _frames(mixed)
    assert channels == 1
    assert (data == 32767).all()  # clipped, not wrapped


def test_recorder_limit_skew_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "lim.wav"
    rec = CallRecorder(SessionId("c"), str(path), "stereo", lambda: 8000, max_seconds=0.1)
    for _ in range(10):
        rec.local(np.ones(160, dtype=np.int16))
        rec.remote(np.ones(160, dtype=np.int16))
    assert rec.closed
    assert len(_frames(path)[2]) == 2 * 800
    # One side silent for over a second: the other is written against silence.
    skew = tmp_path / "skew.wav"
    rec = CallRecorder(SessionId("c"), str(skew), "stereo", lambda: 8000)
    for _ in range(60):
        rec.local(np.ones(160, dtype=np.int16))
    assert rec.seconds > 0.1
    rec.close()
    assert len(_frames(skew)[2]) == 2 * 60 * 160
    empty = tmp_path / "empty.wav"
    CallRecorder(SessionId("c"), str(empty), "mix", lambda: 48000).close()
    assert _frames(empty)[:2] == (1, 48000)
    with pytest.raises(MediaError, match="recording mode"):
        CallRecorder(SessionId("c"), str(path), "quad", lambda: 8000)  # type: ignore[arg-type]
    with pytest.raises(MediaError, match="cannot record"):
        CallRecorder(SessionId("c"), str(tmp_path / "no" / "x.wav"), "mix", lambda: 8000)
