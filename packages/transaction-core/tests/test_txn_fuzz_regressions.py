"""Regressions found by the fuzz campaign (tools/fuzz, docs/security.md "Fuzzing")."""

from __future__ import annotations

import random

from rvoip_sip_core import Request, parse_message
from rvoip_transaction_core import Peer, RequestReceived, TransactionLayer

SOURCE = Peer("UDP", "192.0.2.1", 5062)


def test_empty_via_line_before_the_real_via() -> None:
    """F-TXN-1: an empty ``Via:`` line above the real Via killed ``receive``.

    The typed Via list skips the empty line, so the top Via (with ``rport``, from another
    address than its sent-by) is the second line's; ``replace_top_via`` then split the
    *first* Via line, got no element and raised IndexError while stamping received/rport
    (RFC 3581 §4). Over TCP/TLS that ended the connection reader's task group (issue 10,
    "a single message kills a TCP/TLS endpoint"). Found by the dialog fuzz target. The
    request must be accepted with the stamp on the real top Via.
    """
    data = (
        b"OPTIONS sip:bob@127.0.0.1:5070 SIP/2.0\r\nVia:\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK612e;rport\r\n"
        b"From: <sip:alice@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\n"
        b"Call-ID: f1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    layer = TransactionLayer(rng=random.Random(1))
    layer.set_local("UDP", "127.0.0.1", 5070)
    layer.receive(data, SOURCE, 0.0)
    (event,) = layer.take_events()
    assert isinstance(event, RequestReceived)
    request = event.request
    assert isinstance(request, Request)
    assert request.top_via.received == "192.0.2.1"
    assert request.top_via.rport == 5062
    again = parse_message(request.encode())
    assert again.top_via.branch == "z9hG4bK612e"
