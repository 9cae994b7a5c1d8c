"""3xx redirects against SIPp as a redirecting UAS (``uas_redirect.xml``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from interop_calls import Recorder
from interop_sipp import HOST, Sipp, free_udp_port

from rvoip_session_core import (
    CallFailed,
    CallRedirected,
    CallState,
    SessionManagerBuilder,
)
from rvoip_session_core.testing import uri_of, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


async def test_sipp_302_is_followed_to_an_rvoip_callee(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """SIPp answers our INVITE 302 with bob's Contact; the call is answered by bob."""
    port = free_udp_port()
    bob_handler = Recorder()
    async with await builder(bob_handler, "bob").build() as bob:
        target = uri_of(bob, "bob")
        async with (
            sipp.serve(
                "uas_redirect.xml",
                local_port=port,
                calls=1,
                timeout=15,
                variables={"target": target},
            ) as uas,
            await builder(Recorder(), "alice").build() as alice,
        ):
            session = await alice.create_outgoing_call(
                "sip:alice@127.0.0.1", f"sip:pbx@{HOST}:{port}"
            )
            await alice.wait_for_answer(session.id, 5.0)
            assert (await alice.get_session(session.id)).state is CallState.Active
            assert [call.request_uri for call in bob_handler.incoming] == [target]
            await alice.terminate_session(session.id)
            result = await uas.finish(20)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (1, 0), result.report()


async def test_sipp_302_reported_when_not_following(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """``with_redirects(False)``: SIPp's 302 fails the call with status 302."""
    port = free_udp_port()
    async with (
        sipp.serve(
            "uas_redirect.xml",
            local_port=port,
            calls=1,
            timeout=15,
            variables={"target": "sip:nobody@127.0.0.1:9"},
        ) as uas,
        await builder(Recorder(), "alice").with_redirects(False).build() as alice,
    ):
        session = await alice.create_outgoing_call("sip:alice@127.0.0.1", f"sip:pbx@{HOST}:{port}")
        with pytest.raises(CallFailed) as info:
            await alice.wait_for_answer(session.id, 5.0)
        assert info.value.status == 302
        result = await uas.finish(20)
    assert result.returncode == 0, result.report()


async def test_sipp_ringing_then_302_forward_on_no_answer(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """A phone's forward on no answer: 183 with early media, then 302 on the same dialog.

    RFC 3261 §12.3: the 302 ends the early dialog (and its early media); §8.1.3.4: the
    caller follows it. Before, the early dialog kept the redirect from being followed and
    the call failed with 302. Now it reaches bob, and its RTP goes to bob, not to the
    early-media port of the phone that forwarded it.
    """
    port = free_udp_port()
    media_port = free_udp_port(4)
    bob_handler = Recorder()
    async with await builder(bob_handler, "bob").build() as bob:
        target = uri_of(bob, "bob")
        async with (
            sipp.serve(
                "uas_ring_then_redirect.xml",
                local_port=port,
                media_port=media_port,
                calls=1,
                timeout=15,
                variables={"target": target},
            ) as uas,
            await builder(Recorder(), "alice").build() as alice,
        ):
            events = alice.events()
            session = await alice.create_outgoing_call(
                "sip:alice@127.0.0.1", f"sip:phone@{HOST}:{port}"
            )
            assert await wait_until(
                lambda: alice.registry.get(session.id).state is CallState.EarlyMedia, timeout=5
            )
            early = await alice.get_media_info(session.id)
            assert early.remote_rtp_address == (HOST, media_port)
            await alice.wait_for_answer(session.id, 5.0)
            assert (await alice.get_session(session.id)).state is CallState.Active
            assert [call.request_uri for call in bob_handler.incoming] == [target]
            (incoming,) = bob_handler.incoming
            bob_media = await bob.get_media_info(incoming.id)
            answered = await alice.get_media_info(session.id)
            assert answered.remote_rtp_address == (HOST, bob_media.local_rtp_port)

            async def bob_hears_alice() -> bool:
                stats = await bob.get_media_statistics(incoming.id)
                return stats is not None and stats.packets_received >= 10

            assert await wait_until(bob_hears_alice, timeout=3)
            redirected = []
            while (event := events.receive_nowait()) is not None:
                if isinstance(event, CallRedirected):
                    redirected.append(event)
            assert [(e.session_id, e.target, e.status) for e in redirected] == [
                (session.id, target, 302)
            ]
            await alice.terminate_session(session.id)
            result = await uas.finish(20)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (1, 0), result.report()
