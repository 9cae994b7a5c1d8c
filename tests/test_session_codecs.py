"""HD voice between coordinators: G.722 and Opus calls, the wideband MOS, a PCMU↔Opus bridge.

Virtual time and in-memory networks (``rvoip_session_core.testing``), so each call's
seconds of audio run in milliseconds; the tone checks use the call's own sample rate.
"""

from __future__ import annotations

from typing import Any

import anyio
import numpy as np
import pytest

from rvoip_session_core import tone_source
from rvoip_session_core.testing import (
    VirtualCalls,
    count_tone_frames,
    uri_of,
    virtual_time_backend,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Virtual time (trio + MockClock)."""
    return virtual_time_backend()


@pytest.mark.parametrize(
    ("caller", "callee", "expected", "rate", "model"),
    [
        (["opus", "G722", "PCMU"], ["G722", "opus", "PCMU"], "opus", 48000, "G.107.1"),
        (["G722", "PCMU"], ["opus", "G722", "PCMU"], "G722", 16000, "G.107.1"),
        (["opus", "PCMU"], ["PCMU"], "PCMU", 8000, "G.107"),
    ],
)
async def test_call_uses_negotiated_codec_at_its_rate(
    net: VirtualCalls,
    caller: list[str],
    callee: list[str],
    expected: str,
    rate: int,
    model: str,
) -> None:
    """The offerer's first common codec is used; tones cross at the codec's rate; MOS model."""
    async with (
        net.coordinator(net.builder("alice").with_codecs(caller)) as alice,
        net.coordinator(net.builder("bob").with_codecs(callee)) as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        (bob_call,) = await bob.list_active_sessions()
        await bob.set_audio_source(bob_call.id, tone_source(1000))
        await alice.set_audio_source(call.id, tone_source(700))
        await anyio.sleep(0.5)
        hits, total = await count_tone_frames(alice, call.id, 1000, 0.5)
        assert total > 0
        assert hits > total // 2
        hits, total = await count_tone_frames(bob, bob_call.id, 700, 0.5)
        assert hits > total // 2
        subscription = await alice.subscribe_to_audio_frames(call.id)
        async for frame in subscription:
            assert frame.sample_rate == rate
            assert len(frame.samples) == rate // 50
            break
        subscription.close()
        await anyio.sleep(2.5)
        stats = await alice.get_media_statistics(call.id)
        assert stats is not None
        assert stats.codec == expected
        assert stats.quality_metrics is not None
        assert stats.quality_metrics.model == model
        assert stats.quality_metrics.mos_score is not None
        assert stats.quality_metrics.mos_score > 4.0


async def test_pcmu_to_opus_bridge_resamples(net: VirtualCalls) -> None:
    """A PCMU caller and an Opus caller bridged by bob hear each other's tones (8 ↔ 48 kHz)."""
    async with (
        net.coordinator(net.builder("alice").with_codecs(["PCMU"])) as alice,
        net.coordinator(net.builder("bob").with_codecs(["opus", "PCMU"])) as bob,
        net.coordinator(net.builder("carol").with_codecs(["opus"])) as carol,
    ):
        a_call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        c_call = await carol.create_outgoing_call("sip:carol@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(a_call.id, 5)
        await carol.wait_for_answer(c_call.id, 5)
        assert (await alice.get_media_info(a_call.id)).codec == "PCMU"
        assert (await carol.get_media_info(c_call.id)).codec == "opus"
        legs = await bob.list_active_sessions()
        assert len(legs) == 2
        bridge = await bob.bridge_sessions(legs[0].id, legs[1].id)
        assert (await bob.get_bridge_info(bridge)).mode == "mix"
        await alice.set_audio_source(a_call.id, tone_source(700))
        await carol.set_audio_source(c_call.id, tone_source(1400))
        await anyio.sleep(0.3)
        hits, total = await count_tone_frames(carol, c_call.id, 700, 0.5)
        assert hits > total // 2
        hits, total = await count_tone_frames(alice, a_call.id, 1400, 0.5)
        assert hits > total // 2


async def test_opus_call_carries_dtmf_at_48k(net: VirtualCalls) -> None:
    """RFC 4733 events on an Opus call use telephone-event/48000 and arrive as digits."""
    async with (
        net.coordinator(net.builder("alice").with_codecs(["opus"])) as alice,
        net.coordinator(net.builder("bob").with_codecs(["opus"])) as bob,
    ):
        events = bob.events()
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        info = await alice.get_media_info(call.id)
        assert info.codec == "opus"
        await alice.send_dtmf(call.id, "5")
        with anyio.fail_after(5):
            async for event in events:
                if type(event).__name__ == "DtmfReceived":
                    assert getattr(event, "digit", None) == "5"
                    # Sent and read on the 48 kHz clock: ~100 ms, not 1/6 or 6x of it.
                    assert 60 <= getattr(event, "duration_ms", 0) <= 200
                    assert getattr(event, "method", None) == "rfc4733"
                    break


def test_resampled_tone_source_keeps_pitch() -> None:
    """An 8 kHz sample source played on a 48 kHz call comes out at the same pitch."""
    from rvoip_media_core import SamplesSource, ToneGenerator
    from rvoip_session_core._media import SourceSlot

    slot = SourceSlot(source=SamplesSource(ToneGenerator(440, 0.3).read(8000), loop=True))
    slot.rate = 48000
    frames = [slot.read(960) for _ in range(20)]
    x = np.concatenate(frames[2:]).astype(float) * np.hanning(960 * 18)
    peak = np.argmax(np.abs(np.fft.rfft(x))) * 48000 / len(x)
    assert abs(peak - 440) < 5
