#!/usr/bin/env python3
"""Benchmark rvoip_sip_core parsing and serialization of a typical ~500-byte INVITE with SDP.

Prints operations per CPU second on one core for: the lazy parse; the parse with Via,
From, To, CSeq, Call-ID and Contact typed; serialization of an unmodified message
and of one with a header changed. Run: ``.venv/bin/python tools/bench/parse.py``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from rvoip_sip_core import Request, parse_message

SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=sendrecv\r\n"
)
HEAD = (
    "INVITE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n"
    "Max-Forwards: 70\r\n"
    "To: Bob <sip:bob@example.com>\r\n"
    "From: Alice <sip:alice@example.org>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:alice@192.0.2.10:5060>\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n"
    "\r\n"
)
INVITE = HEAD.encode() + SDP


def lazy() -> object:
    return parse_message(INVITE)


def typed() -> object:
    msg = parse_message(INVITE)
    return (msg.vias, msg.from_, msg.to, msg.cseq, msg.call_id, msg.contacts)


PARSED = parse_message(INVITE)
assert isinstance(PARSED, Request)
CHANGED = PARSED.with_header("Max-Forwards", "69")


def encode_unmodified() -> object:
    return PARSED.encode()


def encode_changed() -> object:
    return CHANGED.encode()


def change_and_encode() -> object:
    return PARSED.with_header("Max-Forwards", "69").encode()


def rate(func: Callable[[], object], seconds: float) -> float:
    """Best of 5 runs of about ``seconds / 5`` each, in calls per CPU second.

    CPU time (``time.process_time``) rather than wall time, so other processes
    sharing the machine distort the figure less.
    """
    n = 1000
    while True:  # calibrate the batch size to ~20 ms
        t0 = time.process_time()
        for _ in range(n):
            func()
        if time.process_time() - t0 > 0.02:
            break
        n *= 2
    best = 0.0
    for _ in range(5):
        deadline = time.process_time() + seconds / 5
        calls = 0
        t0 = time.process_time()
        while time.process_time() < deadline:
            for _ in range(n):
                func()
            calls += n
        best = max(best, calls / (time.process_time() - t0))
    return best


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="time per figure")
    args = parser.parse_args()
    print(f"message: INVITE with SDP, {len(INVITE)} bytes")
    for label, func in (
        ("parse, lazy", lazy),
        ("parse + typed Via/From/To/CSeq/Call-ID/Contact", typed),
        ("encode, unmodified", encode_unmodified),
        ("encode, one header changed", encode_changed),
        ("with_header + encode", change_and_encode),
    ):
        print(f"{label:50s} {rate(func, args.seconds):>12,.0f} /s")


if __name__ == "__main__":
    main()
