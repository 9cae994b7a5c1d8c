"""Files, two-sided recording and IVR building blocks between coordinators (issue 14).

Recording is verified by analysing the recorded WAV (each side sends its own tone; the FFT
peak of each channel says whose it is) over real loopback sockets on asyncio and trio.
Prompts and digit collection run in virtual time on the in-memory networks, and once
over real sockets with an early-media call.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
import soundfile  # type: ignore[import-untyped]
from numpy.typing import NDArray

from rvoip_session_core import (
    AutoAnswerHandler,
    CallDecision,
    CallState,
    CollectEnd,
    Decision,
    IncomingCall,
    MediaError,
    SessionControl,
    tone_source,
)
from rvoip_session_core.testing import (
    VirtualCalls,
    count_tone_frames,
    loopback_builder,
    released,
    uri_of,
    virtual_time_backend,
    wait_until,
)

pytestmark = pytest.mark.anyio

OURS, THEIRS = 440.0, 1000.0


def _peak(samples: NDArray[Any], rate: int) -> float:
    x = samples.astype(np.float64) * np.hanning(len(samples))
    return float(np.argmax(np.abs(np.fft.rfft(x))) * rate / len(samples))


def _level(samples: NDArray[Any], frequency: float, rate: int) -> float:
    """The share of the block's energy within 20 Hz of ``frequency``."""
    x = samples.astype(np.float64) * np.hanning(len(samples))
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(power[np.abs(freqs - frequency) < 20].sum() / max(power.sum(), 1e-9))


def _read_wav(path: Path) -> tuple[int, int, NDArray[np.int16]]:
    with wave.open(str(path), "rb") as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        return wav.getnchannels(), wav.getframerate(), data.astype(np.int16)


def _tone_wav(path: Path, frequency: float, seconds: float, rate: int = 44100) -> Path:
    """A stereo 24-bit WAV at ``rate`` (nothing like what the call runs)."""
    t = np.arange(int(rate * seconds)) / rate
    tone = 0.4 * np.sin(2 * np.pi * frequency * t)
    soundfile.write(str(path), np.stack([tone, tone], axis=1), rate, subtype="PCM_24")
    return path


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_two_sided_recording_over_loopback(tmp_path: Path) -> None:
    """Alice sends 440 Hz, bob 1000 Hz; alice records the call stereo and as a mix.

    Left (ours) peaks at 440 Hz, right (theirs) at 1000 Hz; the mix holds both.
    """
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob").build() as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        (theirs,) = await bob.list_active_sessions()
        await alice.set_audio_source(call.id, tone_source(OURS))
        await bob.set_audio_source(theirs.id, tone_source(THEIRS))
        await anyio.sleep(0.3)  # past the jitter buffer's start
        stereo, mix = tmp_path / "stereo.wav", tmp_path / "mix.wav"
        await SessionControl.start_recording(alice, call.id, stereo, mode="stereo")
        with pytest.raises(MediaError, match="already being recorded"):
            await alice.start_recording(call.id, mix)
        await anyio.sleep(1.2)
        assert await alice.stop_recording(call.id)
        assert not await alice.stop_recording(call.id)
        await alice.start_recording(call.id, mix, mode="mix")
        await anyio.sleep(0.8)
        await alice.terminate_session(call.id)  # the call's end completes the file
        assert await wait_until(lambda: released(alice) and released(bob))
    channels, rate, data = _read_wav(stereo)
    assert (channels, rate) == (2, 8000)
    left, right = data[0::2], data[1::2]
    assert len(left) >= 8000  # at least a second
    # Skip the first 0.2 s (the far side's audio is a jitter buffer behind ours).
    assert abs(_peak(left[1600:], rate) - OURS) < 10
    assert abs(_peak(right[1600:], rate) - THEIRS) < 10
    assert _level(left[1600:], THEIRS, rate) < 0.05
    assert _level(right[1600:], OURS, rate) < 0.05
    channels, rate, data = _read_wav(mix)
    assert channels == 1
    assert _level(data[1600:], OURS, rate) > 0.2
    assert _level(data[1600:], THEIRS, rate) > 0.2


class Deferring(AutoAnswerHandler):
    """Defers every call (the test sends early media, then answers)."""

    def __init__(self) -> None:
        self.incoming: list[IncomingCall] = []

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        self.incoming.append(call)
        return CallDecision.Defer()


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_prompt_to_an_early_media_call(tmp_path: Path) -> None:
    """183 then a prompt: bob plays a file to alice's unanswered call (she hears it while
    EarlyMedia); play_prompt returns at its end and bob answers."""
    wav = _tone_wav(tmp_path / "welcome.wav", 800.0, 1.0, rate=16000)
    handler = Deferring()
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob", handler).build() as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        assert await wait_until(lambda: bool(handler.incoming))
        theirs = handler.incoming[0].id
        assert await wait_until(lambda: bob.registry.get(theirs).state is CallState.Ringing)
        await bob.send_early_media(theirs)
        async with anyio.create_task_group() as tg:
            tg.start_soon(bob.play_prompt, theirs, wav)
            await anyio.sleep(0.3)
            hits, total = await count_tone_frames(alice, call.id, 800.0, 0.4)
            assert (await alice.get_session(call.id)).state is CallState.EarlyMedia
            assert hits > total // 2, f"prompt heard in {hits} of {total} early frames"
        await bob.accept_incoming_call(theirs)
        await alice.wait_for_answer(call.id, 5)
        await alice.terminate_session(call.id)
        assert await wait_until(lambda: released(alice) and released(bob))


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Virtual time (trio + MockClock) unless a test asks for real loops."""
    return virtual_time_backend()


async def test_play_file_is_heard_and_the_prompt_ends_on_time(
    net: VirtualCalls, tmp_path: Path
) -> None:
    """A 44.1 kHz stereo 24-bit WAV plays into a G.722 call (16 kHz): bob hears its tone,
    and play_prompt returns when it has played (0.6 s), the earlier source back after."""
    wav = _tone_wav(tmp_path / "prompt.wav", 700.0, 0.6)
    async with (
        net.coordinator(net.builder("alice").with_codecs(["G722"])) as alice,
        net.coordinator(net.builder("bob").with_codecs(["G722"])) as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        (theirs,) = await bob.list_active_sessions()
        await alice.set_audio_source(call.id, tone_source(1500))
        recording = tmp_path / "bob.wav"
        await bob.start_recording(theirs.id, recording)
        started = anyio.current_time()
        assert await alice.play_prompt(call.id, wav) is None
        elapsed = anyio.current_time() - started
        assert 0.58 <= elapsed <= 0.7
        hits, total = await count_tone_frames(bob, theirs.id, 1500, 0.3)
        assert hits > total // 2  # the tone is back
        await bob.stop_recording(theirs.id)
        await alice.terminate_session(call.id)
    channels, rate, data = _read_wav(recording)
    assert (channels, rate) == (2, 16000)
    heard = data[1::2]
    assert abs(_peak(heard[int(0.1 * rate) : int(0.5 * rate)], rate) - 700) < 10


async def test_barge_in_returns_the_digit_and_digits_are_collected(
    net: VirtualCalls, tmp_path: Path
) -> None:
    """Bob plays a 3 s prompt with barge-in; alice presses 4 (RFC 4733) after 0.5 s: the
    prompt stops and returns "4"; then 2, 3, # are collected as "423" (terminator)."""
    wav = _tone_wav(tmp_path / "menu.wav", 500.0, 3.0, rate=8000)
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob")) as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        (theirs,) = await bob.list_active_sessions()

        async def press() -> None:
            await anyio.sleep(0.5)
            await alice.send_dtmf(call.id, "4")
            await anyio.sleep(0.5)
            await alice.send_dtmf(call.id, "23#")

        async with anyio.create_task_group() as tg:
            tg.start_soon(press)
            started = anyio.current_time()
            digit = await bob.play_prompt(theirs.id, wav, barge_in=True)
            assert digit == "4"
            assert anyio.current_time() - started < 1.0
            got = await bob.collect_digits(theirs.id, max_digits=5, timeout=3, initial=digit)
        assert got.digits == "423"
        assert got.end is CollectEnd.TERMINATOR
        # Nobody presses: a timeout with nothing; max_digits=1 of a single press.
        got = await bob.collect_digits(theirs.id, timeout=2.0)
        assert (got.digits, got.end) == ("", CollectEnd.TIMEOUT)
        async with anyio.create_task_group() as tg:
            tg.start_soon(alice.send_dtmf, call.id, "79")
            got = await bob.collect_digits(theirs.id, max_digits=1, timeout=2.0)
        assert (got.digits, got.end) == ("7", CollectEnd.MAX_DIGITS)
        # A prompt that never ends needs a bound; the call's end ends collection.
        with pytest.raises(MediaError, match="never ends"):
            await bob.play_prompt(theirs.id, tone_source(400))
        assert await bob.play_prompt(theirs.id, tone_source(400), max_duration=0.2) is None
        async with anyio.create_task_group() as tg:
            tg.start_soon(alice.terminate_session, call.id)
            got = await bob.collect_digits(theirs.id, timeout=10.0)
        assert got.end is CollectEnd.ENDED


async def test_prompt_refused_on_a_bridged_call(net: VirtualCalls) -> None:
    """A bridged call sends the bridge's audio: a prompt would never be read (and never
    end), so play_prompt says so instead of waiting for ever."""
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob")) as bob,
        net.coordinator(net.builder("carol")) as carol,
    ):
        a_call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        c_call = await carol.create_outgoing_call("sip:carol@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(a_call.id, 5)
        await carol.wait_for_answer(c_call.id, 5)
        legs = await bob.list_active_sessions()
        bridge = await bob.bridge_sessions(legs[0].id, legs[1].id)
        with pytest.raises(MediaError, match="in a bridge"):
            await bob.play_prompt(legs[0].id, tone_source(500), max_duration=0.2)
        await bob.destroy_bridge(bridge)
        assert await bob.play_prompt(legs[0].id, tone_source(500), max_duration=0.2) is None


async def test_info_digits_are_collected_and_an_opus_call_records_at_48k(
    net: VirtualCalls, tmp_path: Path
) -> None:
    """SIP INFO DTMF (RFC 6086 dtmf-relay) reaches collect_digits like RFC 4733; an Opus
    call is recorded at 48 kHz with each side's tone on its own channel."""
    async with (
        net.coordinator(net.builder("alice").with_codecs(["opus"])) as alice,
        net.coordinator(net.builder("bob").with_codecs(["opus"])) as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        (theirs,) = await bob.list_active_sessions()
        async with anyio.create_task_group() as tg:
            tg.start_soon(alice.send_dtmf, call.id, "5*", "info")
            got = await bob.collect_digits(theirs.id, max_digits=2, timeout=3.0)
        assert (got.digits, got.end) == ("5*", CollectEnd.MAX_DIGITS)
        await alice.set_audio_source(call.id, tone_source(OURS))
        await bob.set_audio_source(theirs.id, tone_source(THEIRS))
        await anyio.sleep(0.3)
        path = tmp_path / "opus.wav"
        await bob.start_recording(theirs.id, path)
        await anyio.sleep(1.0)
        await bob.stop_recording(theirs.id)
        await alice.terminate_session(call.id)
    channels, rate, data = _read_wav(path)
    assert (channels, rate) == (2, 48000)
    assert abs(_peak(data[0::2][9600:], rate) - THEIRS) < 10  # bob's own tone, left
    assert abs(_peak(data[1::2][9600:], rate) - OURS) < 10  # alice's, right
