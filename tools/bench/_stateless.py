#!/usr/bin/env python3
"""A minimal stateless SIP responder: the machine's call-rate ceiling for tools/bench/cps.py.

It answers INVITE with 200 + an SDP answer, BYE (and anything else but ACK) with 200,
and ignores ACK. No transactions, no dialogs, no media: the cheapest peer SIPp's uac can
complete calls against, so ``rvoip answer`` / this = the stack's share of the ceiling.

    .venv/bin/python tools/bench/_stateless.py [--port 0] [--loop uvloop|asyncio] [--cpu N]

Prints ``{"port": P}`` once bound, then runs until stdin closes or a ``quit`` line.
"""

from __future__ import annotations

import sys
from pathlib import Path

# tools/bench/concurrent.py would shadow the stdlib package ``concurrent`` that asyncio
# imports: take this script's directory off the import path first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from typing import Any, cast  # noqa: E402

_COPY = (b"via:", b"v:", b"from:", b"f:", b"to:", b"t:", b"call-id:", b"i:", b"cseq:")
_SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def answer(data: bytes) -> bytes | None:
    """The response to one request datagram, or None (ACK, responses, garbage)."""
    head, _, _ = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    method = lines[0].split(b" ", 1)[0]
    if method == b"ACK" or method.startswith(b"SIP/") or not method:
        return None
    out = [b"SIP/2.0 200 OK"]
    for line in lines[1:]:
        lower = line[:9].lower()
        if lower.startswith(_COPY):
            if lower.startswith((b"to:", b"t:")) and b"tag=" not in line:
                line += b";tag=stateless"
            out.append(line)
    out.append(b"Contact: <sip:stateless@127.0.0.1>")
    if method == b"INVITE":
        out.append(b"Content-Type: application/sdp")
        out.append(b"Content-Length: %d\r\n\r\n" % len(_SDP) + _SDP)
        return b"\r\n".join(out)
    out.append(b"Content-Length: 0\r\n\r\n")
    return b"\r\n".join(out)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport is not an asyncio.DatagramTransport subclass
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received += 1
        reply = answer(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    transport, _protocol = await loop.create_datagram_endpoint(
        _Protocol, local_addr=("127.0.0.1", port)
    )
    # the stdlib loop reads each datagram into a 256 KiB buffer (PACKAGING-NOTES §3.3)
    if isinstance(getattr(transport, "max_size", None), int):
        transport.max_size = 65535  # type: ignore[attr-defined]
    print(json.dumps({"port": transport.get_extra_info("sockname")[1]}), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line or line.strip() == b"quit":
            break
    transport.close()


def main() -> None:
    """Parse the options and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU (Linux)")
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    if args.loop == "uvloop":
        try:
            import uvloop

            uvloop.run(_serve(args.port))
            return
        except ImportError:
            pass
    asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
