"""Replaces (RFC 3891), attended transfer and UPDATE (RFC 3311) against SIPp."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote

import anyio
import pytest
from interop_calls import Recorder
from interop_sipp import HOST, Sipp, free_udp_port

from rvoip_session_core import (
    CallReplaced,
    CallState,
    SessionControl,
    SessionManagerBuilder,
    TransferProgress,
)
from rvoip_session_core.testing import SipTrace, next_event, uri_of, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


async def test_sipp_invite_with_replaces_takes_over_our_call(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """uac_replaces.xml: SIPp's INVITE replaces carol's call with alice; that call ends."""
    carol_handler = Recorder()
    alice_handler = Recorder()
    async with (
        await builder(carol_handler, "carol").build() as carol,
        await builder(alice_handler, "alice").build() as alice,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(carol, "carol"))
        await alice.wait_for_answer(call.id, 5.0)
        did = alice.registry.get(call.id).dialog_id
        assert did is not None
        # RFC 3891 §3: to-tag is carol's (the receiver's) tag, alice's remote tag.
        replaces = f"{did.call_id};to-tag={did.remote_tag};from-tag={did.local_tag}"
        events = carol.events()
        result = await sipp.run(
            "uac_replaces.xml",
            local_port=free_udp_port(),
            remote=carol.local_sip_address,
            calls=1,
            timeout=15,
            variables={"replaces": replaces},
        )
        assert result.returncode == 0, result.report()
        assert (result.successful, result.failed) == (1, 0), result.report()
        replaced = await next_event(events, CallReplaced)
        assert isinstance(replaced, CallReplaced)
        assert await wait_until(lambda: len(alice_handler.ended) == 1)
        assert alice_handler.reasons() == ["remote hangup"]
        # Carol's handler saw alice's call only; both of carol's calls ended.
        assert len(carol_handler.incoming) == 1
        assert await wait_until(lambda: len(carol_handler.ended) == 2)
        assert sorted(carol_handler.reasons()) == ["remote hangup", "replaced"]


async def test_sipp_invite_with_replaces_for_no_call_gets_481(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """uac_replaces.xml naming no dialog of ours: 481, SIPp's call fails, nothing changes."""
    trace = SipTrace()
    async with await builder(Recorder(), "carol").build() as carol:
        trace.attach(carol, "carol")
        result = await sipp.run(
            "uac_replaces.xml",
            local_port=free_udp_port(),
            remote=carol.local_sip_address,
            calls=1,
            timeout=10,
            variables={"replaces": "nosuch@host;to-tag=a;from-tag=b"},
        )
        assert (result.successful, result.failed) == (0, 1), result.report()
        assert [r.cseq.method for r in trace.responses(481)] == ["INVITE"]
        assert len(carol.registry) == 0


async def test_attended_transfer_refer_to_sipp_carries_replaces(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """uas_refer_replaces.xml: SIPp (B) gets our REFER; its Refer-To embeds the escaped
    Replaces of our consultation call with carol (checked by SIPp's ereg and here)."""
    port = free_udp_port()
    trace = SipTrace()
    async with sipp.serve("uas_refer_replaces.xml", local_port=port, calls=1, timeout=15) as uas:
        handler = Recorder()
        async with (
            await builder(handler, "alice").build() as alice,
            await builder(Recorder(), "carol").build() as carol,
        ):
            trace.attach(alice, "alice")
            events = alice.events()
            ab = await alice.create_outgoing_call("sip:alice@127.0.0.1", f"sip:bob@{HOST}:{port}")
            await alice.wait_for_answer(ab.id, 5.0)
            ac = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(carol, "carol"))
            await alice.wait_for_answer(ac.id, 5.0)
            did = alice.registry.get(ac.id).dialog_id
            assert did is not None
            await SessionControl.transfer_attended(alice, ab.id, ac.id)
            assert await alice.wait_for_transfer(ab.id, 5.0) == 200
            # The 2xx NOTIFY ends our leg to B (BYE).
            assert await wait_until(lambda: len(handler.ended) == 1)
            [(ended, reason)] = handler.ended
            assert (ended.id, reason) == (ab.id, "transferred")
            progress = []
            while (event := events.receive_nowait()) is not None:
                if isinstance(event, TransferProgress):
                    progress.append((event.status, event.final))
            assert progress == [(100, False), (200, True)]
            # SIPp calls nobody: the consultation call is still ours to end.
            assert (await alice.get_session(ac.id)).state is CallState.Active
            await alice.terminate_session(ac.id)
            result = await uas.finish(20)
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (1, 0), result.report()
    [refer] = trace.requests("REFER")
    refer_to = refer.headers.get("Refer-To") or ""
    escaped = refer_to[refer_to.index("?Replaces=") + len("?Replaces=") : refer_to.index(">")]
    assert unquote(escaped) == f"{did.call_id};to-tag={did.remote_tag};from-tag={did.local_tag}"


async def test_sipp_update_moves_our_rtp_target(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    """uac_update.xml: SIPp's UPDATE moves its RTP port by 2; we answer 200 with SDP
    (SIPp checks the m= line) and send RTP to the new port."""
    handler = Recorder()
    async with await builder(handler, "carol").build() as carol:
        seen: list[tuple[str, int]] = []

        async def watch() -> None:
            while True:
                for session in await carol.list_active_sessions():
                    address = (await carol.get_media_info(session.id)).remote_rtp_address
                    if address is not None and address not in seen:
                        seen.append(address)
                await anyio.sleep(0.02)

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            result = await sipp.run(
                "uac_update.xml",
                local_port=free_udp_port(),
                remote=carol.local_sip_address,
                calls=1,
                timeout=15,
            )
            tg.cancel_scope.cancel()
        assert result.returncode == 0, result.report()
        assert (result.successful, result.failed) == (1, 0), result.report()
        assert len(seen) == 2, seen
        assert seen[1] == (seen[0][0], seen[0][1] + 2)
        assert await wait_until(lambda: len(handler.ended) == 1)
        assert handler.reasons() == ["remote hangup"]
