"""PBX with routing: called numbers matched against ``*`` patterns are redirected (302).

Run: ``python examples/pbx_routing.py [asyncio|trio]``.
"""

from __future__ import annotations

import sys

import anyio

from rvoip_session_core.api import (
    AutoAnswerHandler,
    CallFailed,
    RoutingHandler,
    SessionManagerBuilder,
)


async def main() -> None:
    router = RoutingHandler()
    router.add_route("sip:support@*", "sip:queue@support.local")
    router.add_route("sip:sales@*", "sip:queue@sales.local")
    router.add_route("sip:+1800*", "sip:tollfree@gateway.com")
    async with (
        await SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address("sip:pbx@127.0.0.1")
        .with_handler(router)
        .build() as pbx,
        await SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address("sip:phone@127.0.0.1")
        .with_handler(AutoAnswerHandler())
        .with_redirects(False)  # show the PBX's 302 instead of following it
        .build() as phone,
    ):
        host, port = pbx.local_sip_address
        for user in ("support", "sales", "+18005551234", "nobody"):
            call = await phone.create_outgoing_call(
                "sip:phone@127.0.0.1", f"sip:{user}@{host}:{port}"
            )
            try:
                await phone.wait_for_answer(call.id, 5)
            except CallFailed as exc:
                print(f"{user:>14}: {exc.status} {exc.reason}")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
