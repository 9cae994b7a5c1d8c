"""More call paths on loopback: failures without a peer, quality reports, re-INVITE with
new media, frames in and out, and a three-party mixed bridge (both backends)."""

from __future__ import annotations

from typing import Any

import anyio
import numpy as np
import pytest

from rvoip_media_core import tone_level
from rvoip_session_core import (
    AutoAnswerHandler,
    CallFailed,
    CallState,
    MediaQualityReport,
    QualityMetrics,
    SessionCoordinator,
    SessionId,
    tone_source,
)
from rvoip_session_core.testing import (
    SipTrace,
    VirtualCalls,
    count_tone_frames,
    loopback_builder,
    next_event,
    released,
    uri_of,
    virtual_time_backend,
    wait_until,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Virtual time (trio + MockClock) unless a test asks for real loops."""
    return virtual_time_backend()


class QualityWatcher(AutoAnswerHandler):
    def __init__(self) -> None:
        self.reports: list[QualityMetrics] = []

    async def on_media_quality(self, session_id: SessionId, metrics: QualityMetrics) -> None:
        self.reports.append(metrics)


async def answered(coordinator: SessionCoordinator, count: int) -> list[str]:
    ids: list[str] = []

    async def check() -> bool:
        ids[:] = [
            s.id for s in await coordinator.list_active_sessions() if s.state is CallState.Active
        ]
        return len(ids) == count

    assert await wait_until(check)
    return ids


async def test_no_peer_times_out_with_408_and_releases_everything(net: VirtualCalls) -> None:
    async with net.coordinator(net.builder("alice", t1=0.02)) as alice:
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", "sip:nobody@127.0.0.1:9")
        with pytest.raises(CallFailed) as info:
            await alice.wait_for_answer(call.id, 10)
        assert info.value.status == 408
        assert released(alice)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_unresolvable_target_fails_with_503() -> None:
    async with await loopback_builder("alice").build() as alice:
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", "sip:bob@example.invalid")
        with pytest.raises(CallFailed) as info:
            await alice.wait_for_answer(call.id, 5)
        assert info.value.status == 503
        assert await wait_until(lambda: released(alice))


async def test_quality_reports_reach_events_and_the_handler(net: VirtualCalls) -> None:
    watcher = QualityWatcher()
    async with (
        net.coordinator(net.builder("alice", watcher)) as alice,
        net.coordinator(net.builder("bob")) as bob,
    ):
        events = alice.events()
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        report = await next_event(events, MediaQualityReport, timeout=5)
        assert isinstance(report, MediaQualityReport)
        assert report.session_id == call.id
        assert report.metrics.mos_score is not None
        assert 1.0 <= report.metrics.mos_score <= 4.5
        assert await wait_until(lambda: bool(watcher.reports))


async def test_update_media_renegotiates_to_the_other_codec(net: VirtualCalls) -> None:
    trace = SipTrace()
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob").with_preferred_codecs(["PCMA", "PCMU"])) as bob,
    ):
        trace.attach(alice, "alice")
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        assert (await alice.get_media_info(call.id)).codec == "PCMU"
        pcma_only = (await alice.generate_sdp_offer(call.id)).replace(
            "RTP/AVP 0 8 101", "RTP/AVP 8 101"
        )
        await alice.update_media(call.id, pcma_only)
        info = await alice.get_media_info(call.id)
        assert (info.codec, info.payload_type) == ("PCMA", 8)
        (bob_id,) = await answered(bob, 1)
        await bob.set_audio_source(bob_id, tone_source(900))
        await anyio.sleep(0.1)
        hits, total = await count_tone_frames(alice, call.id, 900, 0.5)
        assert hits > total // 3
        await alice.update_media(call.id)
        assert len(trace.requests("INVITE")) == 3


async def test_frames_sent_by_the_application_are_heard(net: VirtualCalls) -> None:
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob")) as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        (bob_id,) = await answered(bob, 1)
        tone = tone_source(500).read(8000)
        for start in range(0, 8000, 160):
            await alice.send_audio_frame(call.id, tone[start : start + 160])
        hits, total = await count_tone_frames(bob, bob_id, 500, 0.6)
        assert hits > total // 3
        info = await bob.get_media_info(bob_id)
        assert info.local_rtp_port is not None
        assert info.remote_rtp_address is not None
        assert info.direction == "sendrecv"
        assert isinstance(tone, np.ndarray)


async def test_three_party_bridge_mixes_audio_for_each_listener(net: VirtualCalls) -> None:
    async with (
        net.coordinator(net.builder("hub")) as hub,
        net.coordinator(net.builder("a")) as a,
        net.coordinator(net.builder("b")) as b,
        net.coordinator(net.builder("c")) as c,
    ):
        calls = {}
        for name, peer in (("a", a), ("b", b), ("c", c)):
            session = await peer.create_outgoing_call(f"sip:{name}@127.0.0.1", uri_of(hub, "hub"))
            await peer.wait_for_answer(session.id, 5)
            calls[name] = (peer, session.id)
        legs = await answered(hub, 3)
        bridge = await hub.create_bridge()
        for leg in legs:
            await hub.add_session_to_bridge(bridge, leg)
        assert len((await hub.get_bridge_info(bridge)).participants) == 3
        await calls["a"][0].set_audio_source(calls["a"][1], tone_source(600, 0.2))
        await calls["b"][0].set_audio_source(calls["b"][1], tone_source(1500, 0.2))
        await anyio.sleep(0.15)
        peer_c, c_id = calls["c"]
        # C hears both A and B (each tone carries about half of the energy).
        subscription = await peer_c.subscribe_to_audio_frames(c_id)
        levels = []
        with anyio.move_on_after(0.4):
            async for frame in subscription:
                levels.append((tone_level(frame.samples, 600), tone_level(frame.samples, 1500)))
        heard = [lv for lv in levels if lv[0] > 0.25 and lv[1] > 0.25]
        assert len(heard) > len(levels) // 3
        # A hears B but not itself.
        hits, _ = await count_tone_frames(calls["a"][0], calls["a"][1], 1500, 0.4)
        assert hits > 0
        hits_self, _ = await count_tone_frames(calls["a"][0], calls["a"][1], 600, 0.4)
        assert hits_self == 0
        await hub.remove_session_from_bridge(bridge, legs[0])
        assert len((await hub.get_bridge_info(bridge)).participants) == 2
