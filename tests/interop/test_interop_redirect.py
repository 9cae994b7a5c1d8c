"""3xx redirects against SIPp as a redirecting UAS (``uas_redirect.xml``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from interop_calls import Recorder
from interop_sipp import HOST, Sipp, free_udp_port

from rvoip_session_core import CallFailed, CallState, SessionManagerBuilder
from rvoip_session_core.testing import uri_of

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
