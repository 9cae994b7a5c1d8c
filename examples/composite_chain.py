"""Composite handler chain: blacklist, business hours, routing, then a queue.

The first handler in the chain that decides wins; the others are skipped.
Run: ``python examples/composite_chain.py [asyncio|trio]``.
"""

from __future__ import annotations

import sys

import anyio

from rvoip_session_core.api import (
    AutoAnswerHandler,
    CallDecision,
    CallFailed,
    CallHandler,
    CallSession,
    CompositeHandler,
    Decision,
    IncomingCall,
    QueueHandler,
    RoutingHandler,
    SessionManagerBuilder,
)


class BlacklistHandler(CallHandler):
    """Rejects known nuisance callers; has no opinion about anyone else."""

    def __init__(self, *blocked: str) -> None:
        self.blocked = set(blocked)

    async def screen_call(self, call: IncomingCall) -> Decision | None:
        return CallDecision.Reject("Blocked", 403) if call.from_ in self.blocked else None

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        return await self.screen_call(call) or CallDecision.Accept(None)

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        return None


class BusinessHoursHandler(CallHandler):
    """Outside business hours every call is told to try later (480)."""

    def __init__(self, open_now: bool) -> None:
        self.open_now = open_now

    async def screen_call(self, call: IncomingCall) -> Decision | None:
        return None if self.open_now else CallDecision.Reject("Closed", 480)

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        return await self.screen_call(call) or CallDecision.Accept(None)

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        return None


async def main() -> None:
    queue = QueueHandler(50)
    router = RoutingHandler().add_route("sip:sales@*", "sip:queue@sales.local")
    handler = (
        CompositeHandler()
        .add_handler(BlacklistHandler("sip:spammer@127.0.0.1"))
        .add_handler(BusinessHoursHandler(open_now=True))
        .add_handler(router)
        .add_handler(queue)
    )
    async with (
        await SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address("sip:pbx@127.0.0.1")
        .with_handler(handler)
        .build() as pbx,
        await SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address("sip:phone@127.0.0.1")
        .with_handler(AutoAnswerHandler())
        .with_redirects(False)  # show the PBX's 302 instead of following it
        .build() as phone,
    ):
        host, port = pbx.local_sip_address
        for caller, user in (
            ("sip:spammer@127.0.0.1", "support"),
            ("sip:ann@127.0.0.1", "sales"),
            ("sip:ben@127.0.0.1", "support"),
        ):
            call = await phone.create_outgoing_call(caller, f"sip:{user}@{host}:{port}")
            try:
                await phone.wait_for_answer(call.id, 0.5)
            except CallFailed as exc:
                print(f"{caller} -> {user}: {exc.status} {exc.reason}")
            except TimeoutError:
                print(f"{caller} -> {user}: queued ({queue.queue_size()} waiting)")
        queued = queue.dequeue()
        assert queued is not None
        await pbx.accept_incoming_call(queued)
        print(f"agent answered {queued.from_}")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
