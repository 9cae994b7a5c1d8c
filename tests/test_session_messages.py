"""Instant messages (RFC 3428 MESSAGE) between two coordinators over 127.0.0.1 sockets."""

from __future__ import annotations

import anyio
import pytest

from rvoip_session_core import (
    CallHandler,
    CallSession,
    CallState,
    IncomingCall,
    InDialogRequest,
    InstantMessage,
    InvalidState,
    MessageReceived,
    RequestFailed,
    SessionControl,
)
from rvoip_session_core._types import Accept, Decision
from rvoip_session_core.testing import SipTrace, loopback_builder, uri_of

pytestmark = pytest.mark.anyio


class Pager(CallHandler):
    """Answers calls; takes text/plain messages, refuses the rest with 415."""

    def __init__(self) -> None:
        self.messages: list[InstantMessage] = []

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        return Accept(None)

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        pass

    async def on_message(self, message: InstantMessage) -> int | None:
        self.messages.append(message)
        if not message.content_type.lower().startswith("text/plain"):
            return 415
        return None


async def test_pager_message_reaches_on_message_with_headers_and_charset() -> None:
    """A MESSAGE outside any call: text, sender, custom header; the 200 comes back."""
    pager = Pager()
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob", pager).build() as bob,
    ):
        response = await SessionControl.send_message(
            alice,
            uri_of(bob, "bob"),
            "héllo bob",
            headers={"X-Ticket": "42", "Subject": "greeting"},
        )
        assert response.status == 200
        (message,) = pager.messages
        assert message.text == "héllo bob"
        assert message.content_type == "text/plain;charset=UTF-8"
        assert message.from_ == uri_of(alice, "alice")
        assert message.to == uri_of(bob, "bob")
        assert ("X-Ticket", "42") in message.headers
        assert message.session_id is None


async def test_on_message_status_is_what_the_sender_gets() -> None:
    """The handler's answer (415 here) is the final response; the sender sees it raised."""
    pager = Pager()
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob", pager).build() as bob,
    ):
        events = bob.events()
        with pytest.raises(RequestFailed) as failed:
            await alice.send_message(uri_of(bob, "bob"), b"<x/>", "application/xml")
        assert failed.value.status == 415
        assert failed.value.method == "MESSAGE"
        with anyio.fail_after(5):
            async for event in events:
                if isinstance(event, MessageReceived):
                    assert event.status == 415
                    assert event.message.body == b"<x/>"
                    break


async def test_message_without_a_hook_is_accepted_and_published() -> None:
    """No ``on_message``: 200, and the message arrives as a session event."""
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob").build() as bob,
    ):
        events = bob.events()
        await alice.send_message(uri_of(bob, "bob"), "ping")
        with anyio.fail_after(5):
            async for event in events:
                if isinstance(event, MessageReceived):
                    assert event.message.text == "ping"
                    assert event.status == 200
                    break


async def test_message_inside_a_call_names_the_call() -> None:
    """With ``session_id`` the MESSAGE travels in the call's dialog (RFC 3428 §2)."""
    pager = Pager()
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob", pager).build() as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        await alice.send_message("", "in the call", session_id=call.id)
        (message,) = pager.messages
        assert message.session_id is not None
        bob_call = await bob.get_session(message.session_id)
        assert bob_call.state is CallState.Active
        await alice.terminate_session(call.id)


async def test_bad_messages_are_refused_before_sending() -> None:
    """Oversized pager bodies over UDP, stack-built headers and bad URIs raise at once."""
    async with await loopback_builder("alice").build() as alice:
        with pytest.raises(InvalidState, match="1300"):
            await alice.send_message("sip:bob@127.0.0.1:9", "x" * 1400)
        with pytest.raises(InvalidState, match="Call-ID"):
            await alice.send_message("sip:bob@127.0.0.1:9", "x", headers={"Call-ID": "1"})
        with pytest.raises(InvalidState, match="CR or LF"):
            await alice.send_message("sip:bob@127.0.0.1:9", "x", headers={"X-A": "1\r\nB: 2"})
        with pytest.raises(InvalidState, match="bad target"):
            await alice.send_message("not a uri", "x")


class Answering(CallHandler):
    """Answers every call and keeps what it was offered."""

    def __init__(self) -> None:
        self.incoming: list[IncomingCall] = []

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        self.incoming.append(call)
        return Accept(None)

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        pass


async def test_custom_headers_ride_on_invite_and_bye() -> None:
    """Application headers (P-Asserted-Identity, X-…) on the INVITE reach the callee's
    IncomingCall; a Reason on the BYE is on the wire; stack-built headers are refused."""
    answering = Answering()
    trace = SipTrace()
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob", answering).build() as bob,
    ):
        trace.attach(alice, "alice")
        headers = {"P-Asserted-Identity": "<sip:+15551234@127.0.0.1>", "X-Queue": "sales"}
        call = await alice.create_outgoing_call(
            "sip:alice@127.0.0.1", uri_of(bob, "bob"), headers=headers
        )
        await alice.wait_for_answer(call.id, 5)
        (incoming,) = answering.incoming
        assert incoming.header("p-asserted-identity") == "<sip:+15551234@127.0.0.1>"
        assert incoming.header("X-Queue") == "sales"
        await alice.terminate_session(
            call.id, headers={"Reason": 'SIP;cause=200;text="Call completed elsewhere"'}
        )
        (bye,) = trace.requests("BYE")
        assert "Call completed elsewhere" in (bye.headers.get("Reason") or "")
        with pytest.raises(InvalidState, match="CSeq"):
            await alice.create_outgoing_call(
                "sip:alice@127.0.0.1", uri_of(bob, "bob"), headers={"CSeq": "1 INVITE"}
            )


async def test_messages_are_challenged_when_an_authenticator_is_set() -> None:
    """With ``with_authenticator``, a MESSAGE is challenged (401) like an INVITE: the
    sender's credentials get it through, with the user on the message; none get 401."""
    pager = Pager()
    async with (
        await loopback_builder("alice").with_credentials("alice", "secret").build() as alice,
        await loopback_builder("eve").build() as eve,
        await loopback_builder("bob", pager)
        .with_authenticator("bob.test", {"alice": "secret"})
        .build() as bob,
    ):
        await alice.send_message(uri_of(bob, "bob"), "it is me")
        (message,) = pager.messages
        assert message.authenticated_user == "alice"
        with pytest.raises(RequestFailed) as failed:
            await eve.send_message(uri_of(bob, "bob"), "let me in")
        assert failed.value.status == 401
        assert len(pager.messages) == 1


async def test_in_dialog_requests_expose_their_headers() -> None:
    """In-dialog requests carry application headers both ways (issue 13: only the first
    INVITE did): a hold's re-INVITE, an INFO and the BYE's RFC 3326 Reason, sent with
    ``headers=`` and read from ``InDialogRequest`` events at the far end."""
    answering = Answering()
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob", answering).build() as bob,
    ):
        events = bob.events()
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        await alice.hold_session(call.id, headers={"X-Hold-Reason": "consulting"})
        await alice.send_dtmf(call.id, "5", method="info", headers={"X-Menu": "main"})
        await alice.terminate_session(call.id, headers={"Reason": 'SIP;cause=16;text="bye"'})
        seen: list[InDialogRequest] = []
        with anyio.fail_after(5):
            async for event in events:
                if isinstance(event, InDialogRequest):
                    seen.append(event)
                    if event.method == "BYE":
                        break
        assert [e.method for e in seen] == ["INVITE", "INFO", "BYE"]
        assert seen[0].header("x-hold-reason") == "consulting"
        assert seen[1].header("X-Menu") == "main"
        assert seen[2].header("reason") == 'SIP;cause=16;text="bye"'
        assert len({e.session_id for e in seen}) == 1
