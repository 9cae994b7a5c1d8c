#!/usr/bin/env python3
"""Replay the sip-core work of one SIPp ``uac`` call on the UAS side, in process.

For each call (INVITE with SDP / 100 / 200 with SDP / ACK / BYE / 200, the scenario
of tools/bench/_uac_cps.xml) this does through the public rvoip_sip_core API what the
transaction, dialog and session layers ask of sip-core: parse the INVITE, ACK and BYE
lazily and read the typed headers they read (top Via, From, To, Call-ID, CSeq, Contact,
Record-Route, Max-Forwards, Content-Type, Request-URI); build and encode the 100, the
200 with To tag, Contact, Allow, Supported, Server and the SDP answer, and the 200 to
the BYE; parse the SDP offer, build the answer (session-core's ``build_answer`` calls)
and serialize it. The messages are built once up front, each call with its own
Call-ID, branches and tags, as SIPp sends them.

Prints microseconds of CPU (``time.process_time``) per call for each part and in all,
best of several rounds. Run: ``.venv/bin/python tools/bench/uas_messages.py``
(``--calls N`` per round, ``--rounds R``).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from rvoip_sip_core import (
    MediaDescription,
    Request,
    RtpMap,
    SessionDescription,
    answer_media,
    codecs_match,
    make_response,
    make_sdp,
    new_tag,
    parse_message,
    parse_sdp,
)

LOCAL = "127.0.0.1"
SIPP_PORT = 5061
SERVER_PORT = 5060
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER, NOTIFY, PRACK, MESSAGE"
SUPPORTED = "replaces, timer, 100rel"
CONTACT = f"<sip:rvoip@{LOCAL}:{SERVER_PORT}>"
CODECS = (RtpMap(0, "PCMU", 8000), RtpMap(8, "PCMA", 8000), RtpMap(101, "telephone-event", 8000))


def _sdp(media_port: int) -> bytes:
    return (
        "v=0\r\n"
        f"o=user1 53655765 2353687637 IN IP4 {LOCAL}\r\n"
        "s=-\r\n"
        f"c=IN IP4 {LOCAL}\r\n"
        "t=0 0\r\n"
        f"m=audio {media_port} RTP/AVP 0\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
    ).encode()


def _request(method: str, n: int, branch: str, cseq: int, to_tag: str, body: bytes) -> bytes:
    head = (
        f"{method} sip:service@{LOCAL}:{SERVER_PORT} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {LOCAL}:{SIPP_PORT};branch={branch}\r\n"
        f"From: sipp <sip:sipp@{LOCAL}:{SIPP_PORT}>;tag=4242SIPpTag00{n}\r\n"
        f"To: service <sip:service@{LOCAL}:{SERVER_PORT}>{to_tag}\r\n"
        f"Call-ID: {n}-4242@{LOCAL}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"Contact: sip:sipp@{LOCAL}:{SIPP_PORT}\r\n"
        "Max-Forwards: 70\r\n"
    )
    if body:
        head += "Content-Type: application/sdp\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def build_calls(count: int, seed: int = 1) -> list[tuple[bytes, bytes, bytes, str]]:
    """(INVITE, ACK, BYE, our To tag) per call, as SIPp would send them."""
    rng = random.Random(seed)
    calls = []
    for n in range(count):
        tag = new_tag(rng)
        invite = _request("INVITE", n, f"z9hG4bK-4242-{n}-0", 1, "", _sdp(6000 + 2 * (n % 1000)))
        ack = _request("ACK", n, f"z9hG4bK-4242-{n}-5", 1, f";tag={tag}", b"")
        bye = _request("BYE", n, f"z9hG4bK-4242-{n}-7", 2, f";tag={tag}", b"")
        calls.append((invite, ack, bye, tag))
    return calls


def _typed_request(request: Request) -> None:
    """What transaction-core and dialog-core read of an incoming request."""
    via = request.top_via
    via.branch  # noqa: B018 - reading is the work
    via.sent_by  # noqa: B018
    via.rport  # noqa: B018
    via.maddr  # noqa: B018
    cseq = request.cseq
    cseq.method  # noqa: B018
    request.top_via  # noqa: B018 - read again by the layers above
    request.to.tag  # noqa: B018
    request.from_.tag  # noqa: B018
    request.call_id  # noqa: B018
    request.cseq.seq  # noqa: B018
    request.max_forwards  # noqa: B018


def parse_part(calls: list[tuple[bytes, bytes, bytes, str]]) -> list[tuple[Request, Request]]:
    """Parse each call's three requests and read their typed headers; return INVITE, BYE."""
    kept: list[tuple[Request, Request]] = []
    for invite_data, ack_data, bye_data, _tag in calls:
        invite = parse_message(invite_data)
        assert isinstance(invite, Request)
        _typed_request(invite)
        # dialog layer: the new dialog (RFC 3261 §12.1.1) and its parties
        contacts = invite.contacts
        contacts[0].uri  # noqa: B018
        invite.record_routes  # noqa: B018
        invite.to.params  # noqa: B018
        invite.from_.params  # noqa: B018
        invite.from_.uri  # noqa: B018
        invite.to.uri  # noqa: B018
        invite.uri  # noqa: B018
        invite.content_type  # noqa: B018
        invite.headers.get_all("Record-Route")
        invite.headers.get("Session-Expires")
        invite.headers.get("Require")
        invite.headers.get("Supported")
        ack = parse_message(ack_data)
        assert isinstance(ack, Request)
        _typed_request(ack)
        ack.to.tag  # noqa: B018
        bye = parse_message(bye_data)
        assert isinstance(bye, Request)
        _typed_request(bye)
        bye.to.tag  # noqa: B018
        kept.append((invite, bye))
    return kept


def response_part(
    parsed: list[tuple[Request, Request]], tags: list[str], answers: list[bytes]
) -> None:
    """Build and encode the 100 and the 200 to each INVITE, and the 200 to each BYE."""
    for (invite, bye), tag, answer in zip(parsed, tags, answers, strict=True):
        make_response(invite, 100).encode()
        ok = make_response(
            invite,
            200,
            "OK",
            to_tag=tag,
            headers=[
                ("Allow", ALLOW),
                ("Supported", SUPPORTED),
                ("Contact", CONTACT),
                ("Server", "rvoip-python/0.1"),
            ],
            body=answer,
            content_type="application/sdp",
        )
        ok.encode()
        ok.to.tag  # noqa: B018 - kept by the INVITE server transaction (RFC 2543 ACK match)
        make_response(bye, 200, "OK", headers=[("Server", "rvoip-python/0.1")]).encode()


def _answer(offer: SessionDescription, port: int) -> SessionDescription:
    """session-core's build_answer: first audio stream with a common codec."""
    answered: list[MediaDescription] = []
    for offered in offer.media:
        answer = MediaDescription(offered.media, 0, offered.proto, offered.formats or ("0",))
        if offered.media == "audio" and offered.port != 0:
            candidate = answer_media(
                offered,
                CODECS,
                port=port,
                offered_direction=offer.direction_for(offered),
                direction="sendrecv",
                ptime=20,
                rtcp_mux=False,
            )
            if candidate.port != 0 and any(
                (m := candidate.rtpmap(pt)) is not None
                and any(codecs_match(m, c) for c in CODECS[:2])
                for pt in candidate.payload_types
            ):
                answer = candidate
        answered.append(answer)
    return make_sdp(LOCAL, answered, sess_id=1234, sess_version=0)


def _negotiated(local: SessionDescription, remote: SessionDescription) -> None:
    """session-core's negotiated(): the reads it makes of both descriptions."""
    media = local.media[0]
    for pt in media.payload_types:
        media.rtpmap(pt)
    local.direction_for(media)
    r_media = remote.media[0]
    remote.direction_for(r_media)
    remote.connection_for(r_media)
    r_media.ptime  # noqa: B018


def sdp_part(parsed: list[tuple[Request, Request]]) -> list[bytes]:
    """Parse each offer, build the answer, serialize it; return the answer bodies."""
    out: list[bytes] = []
    for n, (invite, _bye) in enumerate(parsed):
        offer = parse_sdp(invite.body)
        answer = _answer(offer, 20000 + 2 * (n % 1000))
        out.append(answer.encode())
        str(answer)  # remembered on the call as text
        _negotiated(answer, offer)
    return out


def run(count: int) -> tuple[float, float, float]:
    """One round: seconds of CPU for parsing, SDP and responses over ``count`` calls."""
    calls = build_calls(count)
    tags = [c[3] for c in calls]
    clock: Callable[[], float] = time.process_time
    t0 = clock()
    parsed = parse_part(calls)
    t1 = clock()
    answers = sdp_part(parsed)
    t2 = clock()
    response_part(parsed, tags, answers)
    t3 = clock()
    return t1 - t0, t3 - t2, t2 - t1


def main() -> None:
    """Print the best-of-rounds microseconds per call of each part."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000, help="calls per round")
    ap.add_argument("--rounds", type=int, default=7, help="rounds (the best is shown)")
    args = ap.parse_args()
    run(200)  # warm up memo tables
    best = [float("inf")] * 3
    for _ in range(args.rounds):
        for i, seconds in enumerate(run(args.calls)):
            best[i] = min(best[i], seconds)
    per_call = [s / args.calls * 1e6 for s in best]
    names = ("parse + typed access (INVITE, ACK, BYE)", "responses (100, 200+SDP, 200 BYE)", "SDP")
    for name, us in zip(names, per_call, strict=True):
        print(f"{name:42s} {us:8.1f} us/call")
    print(f"{'total sip-core work':42s} {sum(per_call):8.1f} us/call")


if __name__ == "__main__":
    main()
