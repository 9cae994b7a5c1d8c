"""RFC 4028 session timers from the session API, in virtual time (issue 13).

A 30-minute call costs milliseconds: SIP goes over dialog-core's in-memory network and
trio's MockClock jumps to the next deadline. The media network drops every RTP packet
(``media_drop``) and the media timeout is off, so only the session timer decides whether
a call stays up.
"""

from __future__ import annotations

from typing import Any

import anyio
import attrs
import pytest

from rvoip_dialog_core import DEFAULT_ALLOW
from rvoip_dialog_core.testing import WireRecord
from rvoip_session_core import (
    CallEnded,
    ConfigurationError,
    SessionCoordinator,
    SessionManagerBuilder,
    SessionRefreshed,
)
from rvoip_session_core.testing import (
    MediaRecord,
    VirtualCalls,
    next_event,
    released,
    virtual_time_backend,
)
from rvoip_sip_core import Request, Response

pytestmark = pytest.mark.anyio

NO_UPDATE = tuple(m for m in DEFAULT_ALLOW if m != "UPDATE")


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """trio on a fresh autojumping MockClock: virtual time."""
    return virtual_time_backend()


def no_media(record: MediaRecord) -> bool:
    """Drop every RTP/RTCP datagram (the session timer alone keeps the call up)."""
    return True


def builder(net: VirtualCalls, user: str) -> SessionManagerBuilder:
    return net.builder(user).with_media_timeout(None).with_quality_interval(0)


def forbid_update(net: VirtualCalls, coordinator: SessionCoordinator) -> None:
    """The agent stops allowing UPDATE (its Allow and its answers: 405), as many PBXs do."""
    agent = net.sip.agents[coordinator.local_sip_address]
    agent.dialog.config = attrs.evolve(agent.dialog.config, allow=NO_UPDATE)


def requests(net: VirtualCalls, method: str) -> list[Request]:
    return [m for m in net.sip.messages(method=method) if isinstance(m, Request)]


async def call(net: VirtualCalls, alice: SessionCoordinator, bob: SessionCoordinator) -> str:
    session = await alice.create_outgoing_call(alice.local_uri, net.uri(bob, "bob"))
    await alice.wait_for_answer(session.id, 5)
    return session.id


async def test_a_peer_without_update_keeps_a_30_minute_call_up_by_reinvite() -> None:
    """Bug (issue 13): the refresher's UPDATE got 405 from a peer that does not allow
    UPDATE, the refresh-due event was dropped by session-core, and the peer hung up at
    the session's expiry (~30 min into a call at the default interval). Now the refresh
    is a re-INVITE with the same SDP (same o= version, RFC 3264 §8), each reported as
    ``SessionRefreshed``, and the call is still up after 30 minutes."""
    async with VirtualCalls(media_drop=no_media) as net:
        alice = await net.add("alice", builder=builder(net, "alice").with_session_timer(90))
        bob = await net.add("bob", builder=builder(net, "bob"))
        forbid_update(net, bob)
        events = alice.events()
        a = await call(net, alice, bob)
        start = anyio.current_time()
        refreshed: list[SessionRefreshed] = []
        with anyio.move_on_after(30 * 60):
            while True:
                event = await next_event(events, SessionRefreshed, timeout=3600)
                assert isinstance(event, SessionRefreshed)
                refreshed.append(event)
        # A refresh answered at the very instant the 30 minutes ended is counted but its
        # event was still in the buffer when the loop was cancelled: take it too.
        while (late := events.receive_nowait()) is not None:
            if isinstance(late, SessionRefreshed):
                refreshed.append(late)
        assert anyio.current_time() - start >= 30 * 60
        assert (await alice.get_session(a)).state.is_established
        # RFC 4028 §10: one refresh per half interval (45 s) over 30 minutes.
        assert 38 <= len(refreshed) <= 41
        assert {e.method for e in refreshed} == {"INVITE"}
        assert {e.interval for e in refreshed} == {90}
        assert alice.counters["session_refreshes"] == len(refreshed)
        assert alice.counters["session_refresh_reinvites"] == len(refreshed)
        invites = requests(net, "INVITE")
        assert requests(net, "UPDATE") == []
        assert requests(net, "BYE") == []
        # The refresh re-offers the session unchanged: the very SDP of the first INVITE.
        assert {i.body for i in invites} == {invites[0].body}
        assert invites[1].headers.get("Session-Expires") == "90;refresher=uac"
        await alice.terminate_session(a)
        assert released(alice)


async def test_an_update_refresh_refused_405_falls_back_to_reinvite() -> None:
    """RFC 4028 §7.4: the peer advertised UPDATE at setup but answers our refresh 405:
    the refresh is redone as a re-INVITE and the call stays up."""
    async with VirtualCalls(media_drop=no_media) as net:
        alice = await net.add("alice", builder=builder(net, "alice").with_session_timer(90))
        bob = await net.add("bob", builder=builder(net, "bob"))
        events = alice.events()
        a = await call(net, alice, bob)
        forbid_update(net, bob)
        event = await next_event(events, SessionRefreshed, timeout=100)
        assert isinstance(event, SessionRefreshed)
        assert event.method == "INVITE"
        refused = [m for m in net.sip.messages(status=405) if isinstance(m, Response)]
        assert [r.cseq.method for r in refused] == ["UPDATE"]
        await anyio.sleep(300)
        assert (await alice.get_session(a)).state.is_established
        assert requests(net, "BYE") == []


async def test_update_refreshes_are_reported() -> None:
    """A peer that allows UPDATE is refreshed with UPDATE; each 2xx is a SessionRefreshed."""
    async with VirtualCalls(media_drop=no_media) as net:
        alice = await net.add("alice", builder=builder(net, "alice").with_session_timer(120))
        bob = await net.add("bob", builder=builder(net, "bob"))
        events = alice.events()
        await call(net, alice, bob)
        start = anyio.current_time()
        event = await next_event(events, SessionRefreshed, timeout=100)
        assert isinstance(event, SessionRefreshed)
        assert (event.method, event.interval) == ("UPDATE", 120)
        assert 59 <= anyio.current_time() - start <= 61
        assert len(requests(net, "UPDATE")) == 1
        assert alice.counters["session_refreshes"] == 1
        assert "session_refresh_reinvites" not in alice.counters


async def test_a_session_no_refresh_keeps_up_ends_with_bye_and_is_reported() -> None:
    """RFC 4028 §10: the peer vanishes (nothing it sends arrives): the refresher's refresh
    never succeeds and at interval - min(32, interval/3) the call ends with a BYE; the
    application sees ``CallEnded`` with reason "session timer expired"."""
    cut: dict[str, tuple[str, int] | None] = {"from": None}

    def drop(record: WireRecord) -> bool:
        return (record.source.host, record.source.port) == cut["from"]

    async with VirtualCalls(drop=drop, media_drop=no_media) as net:
        alice = await net.add("alice", builder=builder(net, "alice").with_session_timer(90))
        bob = await net.add("bob", builder=builder(net, "bob"))
        events = alice.events()
        await call(net, alice, bob)
        start = anyio.current_time()
        cut["from"] = bob.local_sip_address
        ended = await next_event(events, CallEnded, timeout=200)
        assert isinstance(ended, CallEnded)
        assert ended.reason == "session timer expired"
        assert 59 <= anyio.current_time() - start <= 61
        byes = [b for b in requests(net, "BYE") if b.headers.get("Reason")]
        assert byes
        assert "Session timer expired" in (byes[0].headers.get("Reason") or "")
        assert released(alice)


async def test_the_configured_refresher_and_interval_are_asked_for() -> None:
    """``with_session_timer(expires, min_se, refresher)`` reaches dialog-core per layer:
    the INVITE asks for it, the callee's answer names the refresher."""
    async with VirtualCalls(media_drop=no_media) as net:
        alice = await net.add(
            "alice", builder=builder(net, "alice").with_session_timer(600, 120, "uas")
        )
        bob = await net.add("bob", builder=builder(net, "bob"))
        await call(net, alice, bob)
        invite = requests(net, "INVITE")[0]
        assert invite.headers.get("Session-Expires") == "600;refresher=uas"
        assert invite.headers.get("Min-SE") == "120"
        ok = next(m for m in net.sip.messages(status=200) if isinstance(m, Response))
        assert ok.headers.get("Session-Expires") == "600;refresher=uas"


async def test_session_timers_off() -> None:
    """``with_session_timer(None)``: no ``timer`` option tag, no Session-Expires, and a
    call whose peer runs no timer stays up without any refresh or expiry."""
    async with VirtualCalls(media_drop=no_media) as net:
        alice = await net.add("alice", builder=builder(net, "alice").with_session_timer(None))
        bob = await net.add("bob", builder=builder(net, "bob").with_session_timer(None))
        a = await call(net, alice, bob)
        invite = requests(net, "INVITE")[0]
        assert "Session-Expires" not in invite.headers
        assert "timer" not in (invite.headers.get("Supported") or "")
        assert "100rel" in (invite.headers.get("Supported") or "")
        ok = next(m for m in net.sip.messages(status=200) if isinstance(m, Response))
        assert "Session-Expires" not in ok.headers
        for coordinator in (alice, bob):
            layer = net.sip.agents[coordinator.local_sip_address].dialog
            assert layer.pending()["session_timers"] == 0
        await anyio.sleep(120)
        assert (await alice.get_session(a)).state.is_established
        assert len(requests(net, "INVITE")) == 1
        assert requests(net, "UPDATE") == []


def test_session_timer_settings_are_checked() -> None:
    """RFC 4028 §4: Min-SE is never below 90 s; the interval is at least Min-SE."""
    with pytest.raises(ConfigurationError):
        SessionManagerBuilder().with_session_timer(1800, min_se=60)
    with pytest.raises(ConfigurationError):
        SessionManagerBuilder().with_session_timer(100, min_se=120)
    with pytest.raises(ConfigurationError):
        SessionManagerBuilder().with_session_timer(1800, refresher="me")
    config = SessionManagerBuilder().with_session_timer(300, 90, "uac").config()
    assert config.session_timer is not None
    assert (config.session_timer.expires, config.session_timer.refresher) == (300, "uac")
    assert SessionManagerBuilder().with_session_timer(None).config().session_timer is None
