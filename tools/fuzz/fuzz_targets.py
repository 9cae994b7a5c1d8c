"""The fuzz targets: one function per layer, bytes in, an exception only on a finding.

Each target feeds hostile bytes to one layer the way the network would and checks the
layer's contract: it raises only its documented error (``SipParseError``,
``SdpParseError``/``SdpNegotiationError``, ``DigestError``, ``RtpParseError``), or none
at all where the layer must absorb anything (transaction and dialog layers), and a few
invariants (a stream framed whole or in chunks gives the same frames; what a parser
accepts survives re-serialisation; what our digest client answers our verifier accepts).
Anything else escaping a target is a finding. The same functions run under atheris
(``run.py``, coverage-guided) and in the CI slice (``tests/test_fuzz_slice.py``).
"""

from __future__ import annotations

import contextlib
import pickle
import random
from collections.abc import Callable

from rvoip_dialog_core import DialogUsageError, IncomingInvite
from rvoip_dialog_core.testing import Agent, VirtualNetwork
from rvoip_rtp_core import (
    DtmfDecoder,
    RtpPacket,
    RtpParseError,
    TelephoneEvent,
    encode_rtcp,
    parse_rtcp,
)
from rvoip_session_core._offer_answer import (
    SdpNegotiationError,
    build_answer,
    negotiated,
    parse_offer,
)
from rvoip_sip_core import (
    HEADER_TYPES,
    Authorization,
    DigestClient,
    DigestError,
    DigestServer,
    HeaderType,
    ProxyAuthenticate,
    Request,
    Response,
    SdpParseError,
    SipParseError,
    StreamFramer,
    WWWAuthenticate,
    header_key,
    make_request,
    make_response,
    parse_message,
    parse_sdp,
    validate,
    verify_credentials,
)
from rvoip_transaction_core import (
    Peer,
    RequestReceived,
    TransactionLayer,
    TransactionUsageError,
)

SEPARATOR = b"\n\x00\x00\n"


class FindingError(AssertionError):
    """A target's contract was broken (an invariant failed, not an exception escaping)."""


def check(condition: bool, what: str) -> None:
    """Raise FindingError(what) unless ``condition``."""
    if not condition:
        raise FindingError(what)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


# --------------------------------------------------------------------------- 1. parser


def _touch_headers(message: Request | Response) -> None:
    """Typed access of every header the message carries; only SipParseError may escape."""
    for name, _value in list(message.headers):
        cls: type[HeaderType] | None = HEADER_TYPES.get(header_key(name))
        if cls is None:
            continue
        try:
            items: tuple[HeaderType, ...] = message.headers_of(cls)
            message.header(cls)
        except SipParseError:
            continue
        for item in items:
            # What a header type parsed, it must print back into something it parses.
            text = str(item)
            try:
                again = cls.parse(text)
            except SipParseError as exc:
                raise FindingError(f"{cls.__name__} {text!r} does not re-parse: {exc}") from exc
            check(str(again) == text, f"{cls.__name__} {text!r} prints as {str(again)!r}")
    for read in ("call_id", "max_forwards", "content_type", "body"):
        with contextlib.suppress(SipParseError):
            getattr(message, read)
    if isinstance(message, Request):
        with contextlib.suppress(SipParseError):
            message.uri  # noqa: B018 - parsing is the test


def fuzz_parse(data: bytes) -> None:
    """Lazy and strict parse, typed access of every header, ``validate``, round trip."""
    try:
        lazy: Request | Response | None = parse_message(data)
    except SipParseError as exc:
        check(400 <= exc.status < 700, f"status {exc.status}")
        lazy = None
    try:
        strict: Request | Response | None = parse_message(data, strict=True)
    except SipParseError:
        strict = None
    if strict is not None:
        check(lazy is not None, "the strict parse accepted what the lazy parse refused")
    if lazy is None:
        return
    try:
        validate(lazy)
        valid = True
    except SipParseError:
        valid = False
    check(valid == (strict is not None), "validate() disagrees with parse(strict=True)")
    _touch_headers(lazy)
    if strict is not None:
        encoded = strict.encode()
        try:
            parse_message(encoded, strict=True)
        except SipParseError as exc:
            raise FindingError(f"a valid message does not re-parse once encoded: {exc}") from exc


# --------------------------------------------------------------------------- 2. framer


def _frame(chunks: list[bytes]) -> tuple[list[bytes | object], bool]:
    """Feed ``chunks`` to a fresh framer; the frames and whether it failed."""
    framer = StreamFramer(max_head=2048, max_body=4096)
    out: list[bytes | object] = []
    for chunk in chunks:
        try:
            out += framer.feed(chunk)
        except SipParseError as exc:
            check(exc.status in (400, 413), f"framer status {exc.status}")
            # After a failure every later feed fails again (the stream is dead).
            try:
                framer.feed(b"x")
            except SipParseError:
                return out, True
            raise FindingError("the framer accepted bytes after failing") from None
    return out, False


def fuzz_framer(data: bytes) -> None:
    """The h11 invariant: whole, byte by byte or in chunks, the same frames or the error."""
    if not data:
        return
    seed, stream = data[0], data[1:]
    whole, failed_whole = _frame([stream])
    if len(stream) <= 512:
        # byte by byte is the reference (as h11's fuzz invariant); for long inputs it
        # costs more than it finds, and random chunks below still split every boundary.
        bytewise, failed_bytewise = _frame([stream[i : i + 1] for i in range(len(stream))])
        check(failed_whole == failed_bytewise, "whole and bytewise disagree on the error")
        if not failed_whole:
            check(whole == bytewise, "whole and bytewise give different frames")
    else:
        bytewise, failed_bytewise = whole, failed_whole
    rng = random.Random(seed)
    chunks: list[bytes] = []
    pos = 0
    while pos < len(stream):
        size = rng.choice((1, 2, 3, 5, 17, 64, 700))
        chunks.append(stream[pos : pos + size])
        pos += size
    chunked, failed_chunked = _frame(chunks)
    check(failed_chunked == failed_bytewise, "chunked and bytewise disagree on the error")
    if not failed_chunked:
        check(chunked == bytewise, "chunked and bytewise give different frames")
    for frame in bytewise:
        if isinstance(frame, bytes):
            with contextlib.suppress(SipParseError):
                parse_message(frame)


# --------------------------------------------------------------------------- 3. SDP


def fuzz_sdp(data: bytes) -> None:
    """SDP parse, re-serialisation, and the session's answer to it as an offer."""
    try:
        sdp = parse_sdp(data)
    except SdpParseError:
        return
    try:
        again = parse_sdp(sdp.encode())
    except SdpParseError as exc:
        raise FindingError(f"a parsed SDP does not re-parse once encoded: {exc}") from exc
    check(again.encode() == sdp.encode(), "SDP encode is not stable")
    try:
        offer = parse_offer(data)
    except SdpNegotiationError as exc:
        raise FindingError("parse_offer refused what parse_sdp accepted") from exc
    for codecs in (("PCMU", "PCMA"), ("PCMA",)):
        try:
            answer = build_answer(offer, "127.0.0.1", 40000, codecs=codecs, sess_id=1)
        except SdpNegotiationError as exc:
            check(exc.status == 488, f"answer status {exc.status}")
            continue
        try:
            parse_sdp(answer.encode())
        except SdpParseError as exc:
            raise FindingError(f"our answer does not parse: {exc}") from exc
        try:
            result = negotiated(answer, offer, answer_is_local=True)
        except SdpNegotiationError as exc:
            raise FindingError(f"an answer we built did not negotiate: {exc}") from exc
        if result.remote_address is not None:
            _host, port = result.remote_address
            check(0 < port < 65536, f"remote RTP port {port} out of range")


# --------------------------------------------------------------------------- 4. digest

_REALM = "example.com"
_URI = "sip:bob@example.com"


def _server() -> DigestServer:
    return DigestServer(
        _REALM,
        random.Random(7),
        algorithms=("MD5", "SHA-256"),
        qop=("auth", "auth-int"),
        opaque="op",
    )


def digest_seed_pairs() -> list[bytes]:
    """Real challenges of the harness's server with our client's real answers."""
    out: list[bytes] = []
    server = _server()
    for proxy in (False, True):
        for challenge in server.challenge(100.0, proxy=proxy):
            client = DigestClient("alice", "secret", random.Random(3))
            creds = client.authorize(challenge, "REGISTER", _URI, b"")
            out.append(str(challenge).encode() + SEPARATOR + str(creds).encode())
    return out


def _answer_challenge(text: str) -> None:
    for cls in (WWWAuthenticate, ProxyAuthenticate):
        try:
            challenge = cls.parse(text)
        except SipParseError:
            continue
        client = DigestClient("alice", "secret", random.Random(3))
        if not client.can_answer(challenge):
            with contextlib.suppress(DigestError):
                client.authorize(challenge, "INVITE", _URI, b"body")
            continue
        try:
            creds = client.authorize(challenge, "INVITE", _URI, b"body")
        except DigestError as exc:
            raise FindingError(f"can_answer() but authorize() failed: {exc}") from exc
        try:
            parsed = Authorization.parse(str(creds))
        except SipParseError as exc:
            raise FindingError(f"our credentials {str(creds)!r} do not parse") from exc
        ok = verify_credentials(
            parsed, method="INVITE", password="secret", body=b"body", username="alice"
        )
        check(ok, f"our own answer to {text!r} does not verify")


def _verify(text: str) -> None:
    try:
        creds = Authorization.parse(text)
    except SipParseError:
        return
    server = _server()
    for body in (b"", b"body"):
        verdict = server.verify(
            creds, method="REGISTER", now=101.0, password="secret", body=body, request_uri=_URI
        )
        if verdict.ok:
            check(
                verify_credentials(creds, method="REGISTER", password="secret", body=body),
                "the server accepted credentials whose response is wrong",
            )
            with contextlib.suppress(DigestError):
                server.authentication_info(creds, password="secret", body=body, now=102.0)
            again = server.verify(creds, method="REGISTER", now=101.0, password="secret", body=body)
            check(not again.ok, "a replayed nonce count was accepted")


def _challenge_response(text: bytes) -> None:
    request = make_request(
        "REGISTER",
        _URI,
        from_="<sip:alice@example.com>;tag=1",
        to="<sip:alice@example.com>",
        call_id="c1",
        cseq=1,
        via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1",
    )
    head = bytes(make_response(request, 401)).split(b"\r\nContent-Length")[0]
    wire = head + b"\r\nWWW-Authenticate: " + text + b"\r\nContent-Length: 0\r\n\r\n"
    try:
        response = parse_message(wire)
    except SipParseError:
        return
    if not isinstance(response, Response):
        return
    client = DigestClient("alice", "secret", random.Random(3))
    with contextlib.suppress(SipParseError):
        retry = client.authorize_request(request, response)
        check(retry is None or isinstance(retry, Request), "authorize_request result")


def fuzz_digest(data: bytes) -> None:
    """Challenge parsing and answering, credential parsing and server verification."""
    challenge, _, credentials = data.partition(SEPARATOR)
    _answer_challenge(_text(challenge))
    _verify(_text(credentials))
    _challenge_response(challenge)


# --------------------------------------------------------------------------- 5. transactions

_ALICE = Peer("UDP", "192.0.2.1", 5060)
_CAROL = Peer("UDP", "192.0.2.2", 5062)
_STREAM = Peer("TCP", "192.0.2.3", 40000, connection=1)
_SOURCES = (_ALICE, _CAROL, _STREAM, Peer("UDP", "2001:db8::1", 5060))


def _uac_requests() -> list[Request]:
    out = []
    for i, method in enumerate(("INVITE", "OPTIONS")):
        out.append(
            make_request(
                method,
                "sip:alice@192.0.2.1:5060",
                from_=f"<sip:us@192.0.2.9>;tag=ours{i}",
                to="<sip:alice@192.0.2.1>",
                call_id=f"uac-call-{i}",
                cseq=1,
                via=f"SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKuac{i};rport",
            )
        )
    return out


def _new_layer() -> TransactionLayer:
    layer = TransactionLayer(rng=random.Random(1))
    layer.set_local("UDP", "192.0.2.9", 5060)
    layer.set_local("TCP", "192.0.2.9", 5060)
    for request in _uac_requests():
        layer.send_request(request, _ALICE, 0.0)
    layer.take_transmits()
    return layer


def transaction_seed_inputs() -> list[bytes]:
    """Responses to the harness's client transactions, and a request with its ACK."""
    out = []
    for request in _uac_requests():
        for status in (100, 180, 200, 486):
            out.append(b"\x00" + bytes(make_response(request, status, to_tag="t1")))
    invite, _ = _uac_requests()
    incoming = bytes(invite).replace(b"192.0.2.9", b"192.0.2.1").replace(b"uac0", b"in0")
    out.append(b"\x00" + incoming + SEPARATOR + b"\x10" + incoming.replace(b"INVITE", b"ACK"))
    return out


def _serve_transactions(layer: TransactionLayer, now: float, step: int) -> None:
    for event in layer.take_events():
        if isinstance(event, RequestReceived):
            status = (180, 200, 486, 503)[step % 4]
            try:
                response = make_response(event.request, status, to_tag="uas")
            except SipParseError:
                response = None
            if response is None:
                continue
            with contextlib.suppress(TransactionUsageError):
                layer.respond(event.txn_id, response, now)
                if status < 200:
                    final = make_response(event.request, 200, to_tag="uas")
                    layer.respond(event.txn_id, final, now)


def _own_output_parses(layer: TransactionLayer) -> None:
    for transmit in layer.take_transmits():
        try:
            parse_message(transmit.data)
        except SipParseError as exc:
            raise FindingError(f"the layer sent bytes that do not parse: {exc}") from exc


def fuzz_transaction(data: bytes) -> None:
    """Datagrams into a sans-IO TransactionLayer with a TU that answers; never an exception.

    Each part (split on SEPARATOR) is one byte of control (source, clock step) and the
    datagram. The layer must absorb anything, send only bytes that parse, and hold no
    transaction once every request was answered and the clock ran past every timer.
    """
    layer = _new_layer()
    now = 0.0
    for step, part in enumerate(data.split(SEPARATOR)[:16]):
        if not part:
            continue
        control, datagram = part[0], part[1:]
        now += (0.0, 0.5, 4.0, 40.0)[control >> 6]
        layer.handle_timers(now)
        layer.receive(datagram, _SOURCES[control & 3], now)
        _serve_transactions(layer, now, step)
        _own_output_parses(layer)
    for _ in range(64):
        deadline = layer.next_deadline()
        if deadline is None:
            break
        now = max(now, deadline)
        layer.handle_timers(now)
        _serve_transactions(layer, now, 1)
        _own_output_parses(layer)
    check(layer.next_deadline() is None, "timers still pending after the wind-down")
    check(len(layer) == 0, f"{len(layer)} transactions left after every timer ran")


# --------------------------------------------------------------------------- 6. dialogs

_SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)


def _serve_dialogs(agent: Agent, now: float) -> None:
    """A TU that answers whatever waits for an answer (calls with 200)."""
    for event in list(agent.events):
        ref = getattr(event, "ref", None)
        if isinstance(ref, int):
            status = 200
            if isinstance(event, IncomingInvite) and event.request.call_id.endswith("7"):
                status = 486
            with contextlib.suppress(DialogUsageError):
                agent.dialog.respond(ref, status, body=_SDP, now=now)
    agent.events.clear()


def _established() -> tuple[VirtualNetwork, Agent, Agent]:
    """Alice called Bob and Bob answered: one confirmed dialog each side.

    Built once, then restored from a pickled snapshot for each input (half the cost of
    building it: the call set-up was 60 % of an input's time).
    """
    global _SNAPSHOT
    if _SNAPSHOT is None:
        _SNAPSHOT = pickle.dumps(_build_established())
    net, alice, bob = pickle.loads(_SNAPSHOT)
    return net, alice, bob


_SNAPSHOT: bytes | None = None


def _build_established() -> tuple[VirtualNetwork, Agent, Agent]:
    net = VirtualNetwork()
    alice = net.add("alice", 5060, seed=1)
    bob = net.add("bob", 5070, seed=2)
    alice.dialog.invite("sip:bob@127.0.0.1:5070", from_="sip:alice@127.0.0.1", body=_SDP, now=0.0)
    net.pump()
    _serve_dialogs(bob, net.now)
    net.pump()
    alice.events.clear()
    return net, alice, bob


def _dialog_templates() -> list[bytes]:
    """The in-dialog requests Alice really sends Bob in the established call."""
    net, alice, bob = _established()
    (dialog,) = alice.dialog.dialogs
    did = dialog.id
    start = len(net.wire)
    alice.dialog.reinvite(did, _SDP, now=net.now)
    net.pump()
    _serve_dialogs(bob, net.now)
    net.pump()
    alice.dialog.update(did, _SDP, now=net.now)
    alice.dialog.info(did, b"Signal=1\r\n", "application/dtmf-relay", now=net.now)
    alice.dialog.refer(did, "sip:carol@127.0.0.1:5999", now=net.now)
    net.pump()
    _serve_dialogs(bob, net.now)
    net.pump()
    alice.dialog.bye(did, now=net.now)
    net.pump()
    out = []
    for record in net.wire[start:]:
        if record.source == alice.address and isinstance(record.message, Request):
            out.append(bytes(record.message))
    return out


_MUTATIONS: tuple[Callable[[bytes, random.Random], bytes], ...] = (
    lambda m, r: m.replace(b";tag=", b";tag=x", 1),
    lambda m, r: m.replace(b"CSeq: ", b"CSeq: 9", 1),
    lambda m, r: m.replace(b"CSeq: ", b"CSeq: 0", 1),
    lambda m, r: m.replace(b"branch=z9hG4bK", b"branch=z9hG4bKz", 1),
    lambda m, r: m.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP", 1),
    lambda m, r: (
        m.replace(b"From:", b"To:__", 1).replace(b"To:", b"From:", 1).replace(b"To:__", b"To:", 1)
    ),
    lambda m, r: m.replace(b"\r\n\r\n", b"\r\n\r\nv=0\r\nm=audio 65535 RTP/AVP 0\r\n", 1),
    lambda m, r: m.replace(b"BYE", b"INVITE"),
    lambda m, r: m.replace(b"Call-ID: ", b"Call-ID: 7", 1),
    lambda m, r: m[: r.randrange(len(m) + 1)],
    lambda m, r: m.replace(b"Content-Length: ", b"Content-Length: 1", 1),
    lambda m, r: m.replace(b"Via: ", b"Via: SIP/2.0/UDP [::1;branch=z9hG4bKv,", 1),
)


def _mutate(message: bytes, rng: random.Random) -> bytes:
    for _ in range(rng.randrange(1, 4)):
        message = rng.choice(_MUTATIONS)(message, rng)
    return message


def dialog_seed_inputs(rng: random.Random) -> list[bytes]:
    """Real in-dialog requests, alone, in sequence and mutated (tags, CSeq, Via, bodies)."""
    templates = _dialog_templates()
    out = list(templates)
    out.append(SEPARATOR.join(templates))
    for _ in range(40):
        picked = rng.sample(templates, k=min(3, len(templates)))
        out.append(SEPARATOR.join(_mutate(m, rng) for m in picked))
    return out


def fuzz_dialog(data: bytes) -> None:
    """Fuzzed requests (split on SEPARATOR) from the peer into a UAS with a live dialog.

    The UAS answers everything it is asked; nothing may raise and the virtual network
    must settle; afterwards the dialog layer must still serve a BYE of the real call.
    """
    net, alice, bob = _established()
    for part in data.split(SEPARATOR)[:8]:
        bob.txn.receive(part, alice.address, net.now)
        net.pump()
        _serve_dialogs(bob, net.now)
        _serve_dialogs(alice, net.now)
        net.advance(0.5)
    net.advance(40.0)
    _serve_dialogs(bob, net.now)
    _serve_dialogs(alice, net.now)
    net.advance(40.0)


# --------------------------------------------------------------------------- 7. RTP/RTCP


def fuzz_rtp(data: bytes) -> None:
    """RTP, RTCP compound and RFC 4733 parsing; round trips of what parses."""
    try:
        packet = RtpPacket.parse(data)
    except RtpParseError:
        packet = None
    if packet is not None:
        try:
            again = RtpPacket.parse(packet.encode())
        except RtpParseError as exc:
            raise FindingError(f"an RTP packet does not re-parse once encoded: {exc}") from exc
        check(again == packet, "RTP round trip changed the packet")
        decoder = DtmfDecoder()
        with contextlib.suppress(RtpParseError):
            decoder.feed_packet(packet)
            decoder.flush()
    try:
        packets = parse_rtcp(data)
    except RtpParseError:
        packets = None
    if packets is not None:
        # F-RTCP-1 (docs/security.md) was a padded packet whose unpadded body is not
        # word-aligned: it parsed, but re-encoding raised. The encoder now pads it again.
        encoded = encode_rtcp(packets)
        try:
            again_rtcp = parse_rtcp(encoded)
        except RtpParseError as exc:
            raise FindingError(f"RTCP does not re-parse once encoded: {exc}") from exc
        check(again_rtcp == packets, "RTCP round trip changed the packets")
    try:
        event = TelephoneEvent.parse(data)
    except RtpParseError:
        return
    check(TelephoneEvent.parse(event.encode()) == event, "telephone-event round trip")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "parse": fuzz_parse,
    "framer": fuzz_framer,
    "sdp": fuzz_sdp,
    "digest": fuzz_digest,
    "transaction": fuzz_transaction,
    "dialog": fuzz_dialog,
    "rtp": fuzz_rtp,
}
"""Every target by name (the names ``run.py`` and the CI slice use)."""
