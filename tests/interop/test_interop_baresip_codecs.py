"""baresip against rvoip with HD codecs (issue 14): Opus and G.722, both directions, over UDP.

baresip loads its ``opus``, ``g722`` and ``g711`` modules, sends a 440 Hz sine
(``ausine``) and records what it decodes (``sndfile``); rvoip offers or accepts one codec
(``with_codecs``) and sends a 1 kHz tone. Checked: the codec both sides use, the 440 Hz
tone heard by rvoip at the codec's rate, the 1 kHz tone in baresip's recording, and
rvoip's MOS from the wideband E-model (G.107.1).

Skipped, saying why, when ``baresip`` is not installed (Debian: ``baresip-core``).
"""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import numpy as np
import pytest
from interop_baresip import HOST, Baresip, find_baresip
from interop_calls import only_active_call

from rvoip_media_core import tone_level
from rvoip_session_core import (
    AutoAnswerHandler,
    SessionCoordinator,
    SessionManagerBuilder,
    tone_source,
)
from rvoip_session_core.testing import released, wait_until
from rvoip_transaction_core.testing import self_signed_certificate

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

CODECS = [("opus", "opus", 48000), ("G722", "G722", 16000)]


@pytest.fixture
async def phone(tmp_path: Path) -> AsyncIterator[Baresip]:
    """baresip with Opus, G.722 and G.711, auto-answer, recording what it receives."""
    exe = find_baresip()
    if exe is None:
        pytest.skip("baresip not found on PATH (Debian: apt-get install baresip-core)")
    (tmp_path / "tls").mkdir()
    files = self_signed_certificate(tmp_path / "tls")
    if files is None:
        pytest.skip("openssl CLI not found: baresip's config needs a certificate")
    cert, key = files
    async with Baresip(
        exe, tmp_path, cert, key, codecs=("opus", "g722", "g711"), record=True
    ) as running:
        yield running


async def _check_call(rvoip: SessionCoordinator, call_id: str, codec: str, rate: int) -> None:
    """Codec, 440 Hz from baresip at the codec's rate, and the wideband MOS."""
    info = await rvoip.get_media_info(call_id)
    assert info.codec == codec
    await rvoip.set_audio_source(call_id, tone_source(1000))
    subscription = await rvoip.subscribe_to_audio_frames(call_id)
    frames: list[np.ndarray] = []
    with anyio.move_on_after(2.5):
        async for frame in subscription:
            assert frame.sample_rate == rate
            frames.append(frame.samples)
    subscription.close()
    heard = [f for f in frames[10:] if np.any(f)]
    assert heard, "no audio from baresip"
    level = tone_level(np.concatenate(heard), 440.0, rate)
    assert level > 0.5, f"440 Hz level {level:.2f}"
    stats = await rvoip.get_media_statistics(call_id)
    assert stats is not None
    assert stats.codec == codec
    q = stats.quality_metrics
    assert q is not None
    assert q.model == "G.107.1"
    assert q.mos_score is not None
    assert q.mos_score > 3.5


def _recorded_tone(phone: Baresip, frequency: float) -> float:
    """The level of ``frequency`` in the last second of baresip's newest recording."""
    files = phone.recordings()
    assert files, f"baresip wrote no recording: {phone.output()[-2000:]}"
    with wave.open(str(files[-1])) as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    mono = data.reshape(-1, channels)[:, 0]
    return tone_level(mono[-rate:], frequency, rate)


@pytest.mark.parametrize(("ours", "codec", "rate"), CODECS)
async def test_baresip_calls_rvoip(
    phone: Baresip,
    builder: Callable[..., SessionManagerBuilder],
    ours: str,
    codec: str,
    rate: int,
) -> None:
    """baresip offers opus, G722, PCMU, PCMA; rvoip accepting only ``ours`` answers with it."""
    async with await builder(AutoAnswerHandler()).with_codecs([ours]).build() as rvoip:
        port = rvoip.endpoint.local("UDP").port
        await phone.command("dial", f"sip:rvoip@{HOST}:{port}")
        await phone.event("CALL_ESTABLISHED")
        call_id = await only_active_call(rvoip)
        await _check_call(rvoip, call_id, codec, rate)
        await rvoip.terminate_session(call_id)
        await phone.event("CALL_CLOSED")
        assert await wait_until(lambda: released(rvoip))
    await anyio.sleep(0.5)  # sndfile closes its file after the call
    assert _recorded_tone(phone, 1000.0) > 0.5


@pytest.mark.parametrize(("ours", "codec", "rate"), CODECS)
async def test_rvoip_calls_baresip(
    phone: Baresip,
    builder: Callable[..., SessionManagerBuilder],
    ours: str,
    codec: str,
    rate: int,
) -> None:
    """rvoip offers ``ours`` (and PCMU after it); baresip answers with the HD codec."""
    async with (
        await builder(AutoAnswerHandler(), "alice").with_codecs([ours, "PCMU"]).build() as (rvoip)
    ):
        with anyio.fail_after(30):
            call = await rvoip.create_outgoing_call(f"sip:alice@{HOST}", phone.uri("udp"))
            await rvoip.wait_for_answer(call.id, 10)
            await phone.event("CALL_ESTABLISHED")
            await _check_call(rvoip, call.id, codec, rate)
            await rvoip.terminate_session(call.id)
            await phone.event("CALL_CLOSED")
            assert await wait_until(lambda: released(rvoip))
    await anyio.sleep(0.5)
    assert _recorded_tone(phone, 1000.0) > 0.5
