"""SRTP (SDES, RFC 4568) with baresip's ``srtp`` module, both directions, audio verified.

baresip's account ``mediaenc=srtp`` is best effort (RTP/AVP with ``a=crypto``, like our
"optional") and ``mediaenc=srtp-mand`` mandatory (RTP/SAVP, like our "required"). Each
call checks the audio both ways: baresip's 440 Hz ``ausine`` is detected in what rvoip
decodes, and our 1 kHz tone in what baresip decoded (its ``sndfile`` module writes the
received audio to a WAV file). Also: the fall-backs to plain RTP, the refusals, SRTP
over TLS signalling, and a SIPp UAS that answers our RTP/SAVP offer in clear.

Skipped, saying why, when ``baresip`` (Debian: ``baresip-core``) or ``sipp`` is absent.
"""

from __future__ import annotations

import logging
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from interop_baresip import HOST, Baresip, find_baresip
from interop_calls import Recorder, only_active_call
from interop_sipp import Sipp, free_udp_port

from rvoip_media_core import detect_tone
from rvoip_session_core import (
    CallFailed,
    SessionCoordinator,
    SessionManagerBuilder,
    tone_source,
)
from rvoip_session_core._offer_answer import SrtpMode
from rvoip_session_core.testing import SipTrace, count_tone_frames, released, wait_until
from rvoip_transaction_core.testing import self_signed_certificate

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

BARESIP_TONE = 440.0  # its ausine microphone
OUR_TONE = 1000.0


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and its key), the CA of both sides."""
    files = self_signed_certificate(tmp_path_factory.mktemp("baresip-srtp"))
    if files is None:
        pytest.skip("openssl CLI not found: cannot generate a test certificate")
    return files


@pytest.fixture
def baresip_exe() -> str:
    exe = find_baresip()
    if exe is None:
        pytest.skip("baresip not found on PATH (Debian: apt-get install baresip-core)")
    return exe


@pytest.fixture
def make_phone(
    baresip_exe: str, tmp_path: Path, tls_files: tuple[Path, Path]
) -> Callable[[str | None], Any]:
    """``make_phone(mediaenc)``: a context manager running baresip with that encryption."""
    cert, key = tls_files

    def make(mediaenc: str | None) -> Baresip:
        return Baresip(baresip_exe, tmp_path, cert, key, mediaenc=mediaenc, record=True)

    return make


def srtp_builder(
    builder: Callable[..., SessionManagerBuilder], mode: SrtpMode
) -> SessionManagerBuilder:
    return builder(Recorder(), "rvoip").with_srtp(mode).with_preferred_codecs(["PCMU"])


def is_srtp(coordinator: SessionCoordinator, session_id: str) -> bool:
    """Whether the call's RTP session protects its packets (test-only reach inside)."""
    media = coordinator._registry.get(session_id).media
    return bool(media.rtp.srtp_active)


def tone_share(wav: Path, frequency: float) -> float:
    """The share of 20 ms frames of a WAV file (8 kHz mono) that carry ``frequency``."""
    with wave.open(str(wav)) as reader:
        assert reader.getframerate() == 8000
        raw = reader.readframes(reader.getnframes())
        samples = np.frombuffer(raw, dtype=np.int16)[:: reader.getnchannels()]
    frames = [samples[i : i + 160] for i in range(0, len(samples) - 159, 160)]
    if not frames:
        return 0.0
    return sum(bool(detect_tone(f, frequency)) for f in frames) / len(frames)


async def check_audio_both_ways(rvoip: SessionCoordinator, call_id: str, phone: Baresip) -> None:
    await rvoip.set_audio_source(call_id, tone_source(OUR_TONE))
    hits, total = await count_tone_frames(rvoip, call_id, BARESIP_TONE, 1.0)
    assert hits > total // 2, phone.output()
    await anyio.sleep(0.5)  # baresip decodes (and records) our tone meanwhile


def check_baresip_heard_us(phone: Baresip) -> None:
    recordings = phone.recordings("dec")
    assert recordings, phone.output()
    assert tone_share(recordings[-1], OUR_TONE) > 0.5, phone.output()


async def hang_up(rvoip: SessionCoordinator, call_id: str, phone: Baresip) -> None:
    await rvoip.terminate_session(call_id)
    await phone.event("CALL_CLOSED")
    assert await wait_until(lambda: released(rvoip), timeout=10)


@pytest.mark.parametrize(
    ("mode", "mediaenc"),
    [
        ("required", "srtp-mand"),
        ("optional", "srtp"),
        ("required", "srtp"),
        ("optional", "srtp-mand"),
    ],
)
async def test_baresip_calls_rvoip_with_srtp(
    make_phone: Callable[[str | None], Baresip],
    builder: Callable[..., SessionManagerBuilder],
    mode: SrtpMode,
    mediaenc: str,
) -> None:
    """baresip offers (RTP/SAVP for srtp-mand, RTP/AVP + a=crypto for srtp); we answer with
    one crypto line; both ends encrypt and each hears the other's tone."""
    async with make_phone(mediaenc) as phone, await srtp_builder(builder, mode).build() as rvoip:
        with anyio.fail_after(30):
            port = rvoip.endpoint.local("UDP").port
            await phone.command("dial", f"sip:judge@{HOST}:{port}")
            await phone.event("CALL_ESTABLISHED")
            call_id = await only_active_call(rvoip)
            assert is_srtp(rvoip, call_id)
            await check_audio_both_ways(rvoip, call_id, phone)
            await hang_up(rvoip, call_id, phone)
    assert "SRTP is Enabled" in phone.output()
    check_baresip_heard_us(phone)


@pytest.mark.parametrize(
    ("mode", "mediaenc"), [("required", "srtp-mand"), ("optional", "srtp"), ("required", "srtp")]
)
async def test_rvoip_calls_baresip_with_srtp(
    make_phone: Callable[[str | None], Baresip],
    builder: Callable[..., SessionManagerBuilder],
    mode: SrtpMode,
    mediaenc: str,
) -> None:
    """We offer (RTP/SAVP for required, RTP/AVP + a=crypto for optional); baresip answers
    with a crypto line; both ends encrypt and each hears the other's tone."""
    async with make_phone(mediaenc) as phone, await srtp_builder(builder, mode).build() as rvoip:
        with anyio.fail_after(30):
            call = await rvoip.create_outgoing_call(f"sip:rvoip@{HOST}", phone.uri("udp"))
            await rvoip.wait_for_answer(call.id, 10)
            await phone.event("CALL_ESTABLISHED")
            assert is_srtp(rvoip, call.id)
            info = await rvoip.get_media_info(call.id)
            assert "a=crypto:" in (info.remote_sdp or "")
            await check_audio_both_ways(rvoip, call.id, phone)
            await hang_up(rvoip, call.id, phone)
    assert "SRTP is Enabled" in phone.output()
    check_baresip_heard_us(phone)


@pytest.mark.parametrize("direction", ["baresip-calls", "rvoip-calls"])
async def test_best_effort_srtp_falls_back_to_rtp_with_an_rvoip_without_srtp(
    make_phone: Callable[[str | None], Baresip],
    builder: Callable[..., SessionManagerBuilder],
    direction: str,
) -> None:
    """baresip ``srtp`` against rvoip "off": plain RTP both ways, audio both ways.

    baresip's best-effort mode puts an a=crypto line in its answer even to our plain
    offer; that line answers nothing we offered, so it is ignored (it used to fail the
    call: "the answer's a=crypto tag 1 matches no offered crypto line", and the
    coordinator then sent a CANCEL instead of a BYE, leaving baresip in the call).
    """
    async with make_phone("srtp") as phone, await srtp_builder(builder, "off").build() as rvoip:
        with anyio.fail_after(30):
            if direction == "baresip-calls":
                port = rvoip.endpoint.local("UDP").port
                await phone.command("dial", f"sip:judge@{HOST}:{port}")
                await phone.event("CALL_ESTABLISHED")
                call_id = await only_active_call(rvoip)
            else:
                call = await rvoip.create_outgoing_call(f"sip:rvoip@{HOST}", phone.uri("udp"))
                await rvoip.wait_for_answer(call.id, 10)
                call_id = call.id
            assert not is_srtp(rvoip, call_id)
            await check_audio_both_ways(rvoip, call_id, phone)
            await hang_up(rvoip, call_id, phone)
    assert "SRTP is Enabled" not in phone.output()
    check_baresip_heard_us(phone)


async def test_baresip_srtp_mand_is_refused_by_rvoip_without_srtp(
    make_phone: Callable[[str | None], Baresip],
    builder: Callable[..., SessionManagerBuilder],
) -> None:
    """An RTP/SAVP offer is never answered in clear: 488 with a Warning naming SRTP."""
    trace = SipTrace()
    async with (
        make_phone("srtp-mand") as phone,
        await srtp_builder(builder, "off").build() as rvoip,
    ):
        trace.attach(rvoip, "rvoip")
        with anyio.fail_after(30):
            port = rvoip.endpoint.local("UDP").port
            await phone.command("dial", f"sip:judge@{HOST}:{port}")
            closed = await phone.event("CALL_CLOSED")
    assert "488" in str(closed), closed
    refusal = trace.responses(488)[0]
    assert "SRTP" in (refusal.headers.get("Warning") or "")


@pytest.mark.parametrize(("mode", "mediaenc"), [("required", None), ("optional", "srtp-mand")])
async def test_rvoip_call_refused_by_baresip_names_the_refusal(
    make_phone: Callable[[str | None], Baresip],
    builder: Callable[..., SessionManagerBuilder],
    mode: SrtpMode,
    mediaenc: str | None,
) -> None:
    """baresip without srtp refuses our RTP/SAVP offer; baresip srtp-mand refuses our
    RTP/AVP + a=crypto offer (it wants RTP/SAVP): the call fails with the 488."""
    async with make_phone(mediaenc) as phone, await srtp_builder(builder, mode).build() as rvoip:
        with anyio.fail_after(30):
            call = await rvoip.create_outgoing_call(f"sip:rvoip@{HOST}", phone.uri("udp"))
            with pytest.raises(CallFailed) as info:
                await rvoip.wait_for_answer(call.id, 10)
    assert info.value.status == 488, phone.output()


async def test_srtp_over_tls_signalling_with_baresip_does_not_warn(
    make_phone: Callable[[str | None], Baresip],
    builder: Callable[..., SessionManagerBuilder],
    tls_files: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The recommended set-up: SDES keys only inside TLS, so no warning about them."""
    caplog.set_level(logging.WARNING, "rvoip_session_core.media")
    cert, key = tls_files
    rvoip_builder = (
        srtp_builder(builder, "required")
        .with_tls(str(cert), str(key), cafile=str(cert))
        .with_transport("tls")
    )
    async with make_phone("srtp-mand") as phone, await rvoip_builder.build() as rvoip:
        with anyio.fail_after(30):
            call = await rvoip.create_outgoing_call(f"sip:rvoip@{HOST}", phone.uri("tls"))
            await rvoip.wait_for_answer(call.id, 10)
            await phone.event("CALL_ESTABLISHED")
            assert is_srtp(rvoip, call.id)
            await check_audio_both_ways(rvoip, call.id, phone)
            await hang_up(rvoip, call.id, phone)
    check_baresip_heard_us(phone)
    assert "unencrypted SIP transport" not in caplog.text


async def test_required_offer_answered_in_clear_by_sipp_is_ended_with_bye(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """SIPp's UAS answers our RTP/SAVP offer with plain RTP/AVP: the call fails naming SRTP.

    Bug found here: the failed negotiation hung the call up like an unanswered one, with
    a CANCEL, which does nothing after a 200 OK; a peer that does not hang up itself
    (SIPp, baresip) stayed in the call and ``wait_for_answer`` never returned. The
    confirmed dialog is now ended with a BYE, which SIPp's scenario expects.
    """
    port = free_udp_port()
    async with (
        sipp.serve("uas_answer.xml", local_port=port, calls=1, timeout=15) as uas,
        await srtp_builder(builder, "required").build() as rvoip,
    ):
        call = await rvoip.create_outgoing_call(f"sip:rvoip@{HOST}", f"sip:uas@{HOST}:{port}")
        with pytest.raises(CallFailed, match="SRTP is required but the answer"):
            await rvoip.wait_for_answer(call.id, 10)
        result = await uas.finish(20)
        assert await wait_until(lambda: released(rvoip), timeout=10)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (1, 0), result.report()
