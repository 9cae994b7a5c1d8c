"""The ``rvoip`` command line: ``rvoip demo`` and friends."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

SAMPLE_INVITE = (
    b"INVITE sip:bob@127.0.0.1:5070 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:alice@127.0.0.1:5060>;tag=1928301774\r\n'
    b"To: <sip:bob@127.0.0.1:5070>\r\n"
    b"Call-ID: a84b4c76e66710@127.0.0.1\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@127.0.0.1:5060>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 127.0.0.1\r\n"
    b"s=-\r\n"
    b"c=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=sendrecv\r\n"
)


def _parser_demo() -> int:
    """Parse a sample INVITE with rvoip_sip_core and print its typed view."""
    try:
        from rvoip_sip_core import parse_message
    except ImportError as exc:
        print(f"rvoip demo: the SIP parser is not available yet ({exc})", file=sys.stderr)
        return 2
    msg = parse_message(SAMPLE_INVITE)
    print("Parsed a sample INVITE with rvoip_sip_core:")
    start_line = SAMPLE_INVITE.split(b"\r\n", 1)[0].decode()
    print(f"  start line : {start_line}")
    print(f"  From       : {msg.from_}")
    print(f"  To         : {msg.to}")
    print(f"  Call-ID    : {msg.call_id}")
    print(f"  CSeq       : {msg.cseq}")
    for via in msg.vias:
        print(f"  Via        : {via}")
    print(f"  body       : {len(msg.body)} bytes of {msg.content_type}")
    for line in msg.body.decode().splitlines():
        print(f"    {line}")
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rvoip", description="rvoip: SIP calls with RTP audio, from Python."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("demo", help="run a self-contained demonstration on 127.0.0.1")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rvoip`` command line.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The process exit status (0 on success).
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _parser_demo()
    parser.print_help()
    return 2
