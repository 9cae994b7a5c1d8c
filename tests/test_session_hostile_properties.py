"""Hostile input through a whole coordinator's real UDP listener (issues 10, 12, 13).

The transaction-core property tests stop at the transaction layer. Here mutated
REGISTER, SUBSCRIBE, NOTIFY, MESSAGE, INVITE-with-Replaces, UPDATE, INFO and PRACK requests
(the mutations of the fuzz campaign, ``tools/fuzz/mutations.py``) and arbitrary bytes reach
a running coordinator that serves a registrar, the dialog event package and MESSAGE: the
dialog layer, the registrar, subscriptions and the message service all see them. After
each batch the coordinator must still be running and answer OPTIONS and a fresh REGISTER.
"""

from __future__ import annotations

import random
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rvoip_session_core import (
    AutoAnswerHandler,
    InstantMessage,
    SessionCoordinator,
    SessionManagerBuilder,
)
from rvoip_sip_core import Response, SipParseError, parse_message

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools" / "fuzz"))
from mutations import mutate

_HEAD = (
    "{method} sip:{user}@127.0.0.1:{port} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:{src};branch=z9hG4bK{branch};rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:alice@127.0.0.1>;tag=f{branch}\r\n"
    "To: <sip:{user}@127.0.0.1>{to_tag}\r\n"
    "Call-ID: {branch}@hostile\r\n"
    "CSeq: 1 {method}\r\n"
    "Contact: <sip:alice@127.0.0.1:{src}>\r\n"
)
_SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0\r\n"
)
_TEMPLATES = [
    ("REGISTER", "", "Expires: 60\r\n", ""),
    (
        "SUBSCRIBE",
        "",
        "Event: dialog\r\nExpires: 60\r\nAccept: application/dialog-info+xml\r\n",
        "",
    ),
    (
        "NOTIFY",
        ";tag=x1",
        "Event: dialog\r\nSubscription-State: active;expires=60\r\n"
        "Content-Type: application/dialog-info+xml\r\n",
        "<dialog-info version='0'/>",
    ),
    ("MESSAGE", "", "Content-Type: text/plain;charset=UTF-8\r\n", "hello"),
    (
        "INVITE",
        "",
        "Replaces: abc@x;to-tag=1;from-tag=2\r\nContent-Type: application/sdp\r\n",
        _SDP,
    ),
    ("UPDATE", ";tag=x2", "Content-Type: application/sdp\r\n", _SDP),
    ("INFO", ";tag=x3", "Content-Type: application/dtmf-relay\r\n", "Signal=5\r\nDuration=160\r\n"),
    ("PRACK", ";tag=x4", "RAck: 1 1 INVITE\r\n", ""),
]


def _request(port: int, src: int, index: int, branch: str) -> bytes:
    method, to_tag, extra, body = _TEMPLATES[index % len(_TEMPLATES)]
    head = _HEAD.format(method=method, user="bob", port=port, src=src, branch=branch, to_tag=to_tag)
    return (head + extra + f"Content-Length: {len(body)}\r\n\r\n" + body).encode()


class _Pager(AutoAnswerHandler):
    async def on_message(self, message: InstantMessage) -> int | None:
        return None


@attrs.define
class Running:
    portal: BlockingPortal
    coordinator: SessionCoordinator
    port: int
    sock: socket.socket

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", self.port))

    def ask(self, request: bytes, status: int, method: str) -> None:
        """Send ``request``; a final response ``status`` to ``method`` must come back."""
        self.send(request)
        self.sock.settimeout(5.0)
        while True:  # answers to earlier hostile requests may still be on their way
            try:
                message = parse_message(self.sock.recv(65535))
                cseq = message.cseq
            except SipParseError:
                continue
            if isinstance(message, Response) and cseq.method == method and message.status >= 200:
                assert message.status == status, message.status
                return

    def assert_alive(self, tag: str) -> None:
        src = self.sock.getsockname()[1]
        assert self.portal.call(lambda: self.coordinator.is_running)
        options = _request(self.port, src, 0, f"alive{tag}").replace(b"REGISTER", b"OPTIONS")
        self.ask(options, 200, "OPTIONS")
        self.ask(_request(self.port, src, 0, f"reg{tag}"), 200, "REGISTER")


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def running(request: pytest.FixtureRequest) -> Iterator[Running]:
    builder = (
        SessionManagerBuilder()
        .with_local_address("sip:bob@127.0.0.1")
        .with_sip_port(0)
        .with_handler(_Pager())
        .with_registrar(domain="127.0.0.1")
        .with_dialog_event_package()
    )
    with start_blocking_portal(backend=str(request.param)) as portal:
        coordinator = portal.call(builder.build)
        with (
            portal.wrap_async_context_manager(coordinator),
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
        ):
            sock.bind(("127.0.0.1", 0))
            port = portal.call(lambda: coordinator.local_sip_address[1])
            yield Running(portal, coordinator, port, sock)


HOSTILE = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def test_mutated_requests_end_nothing(running: Running) -> None:
    """Property: mutated requests of every kind the upper layers serve are answered,
    refused or dropped; the coordinator, its registrar and its listener stay up."""
    src = running.sock.getsockname()[1]
    pool = [_request(running.port, src, i, f"p{i}") for i in range(len(_TEMPLATES))]

    @HOSTILE
    @given(st.integers(0, len(_TEMPLATES) - 1), st.integers(0, 2**32 - 1))
    def feed(index: int, seed: int) -> None:
        rng = random.Random(seed)
        running.send(mutate(_request(running.port, src, index, f"m{seed}"), rng, pool))

    feed()
    running.assert_alive("mutated")


def test_arbitrary_bytes_end_nothing(running: Running) -> None:
    """Property: whatever datagram arrives, the coordinator still serves OPTIONS and REGISTER."""

    @HOSTILE
    @given(st.binary(max_size=1500))
    def feed(data: bytes) -> None:
        running.send(data)

    feed()
    running.assert_alive("bytes")
