"""Hypothesis properties over *mutated real messages*: only the package's parse error escapes.

Arbitrary bytes rarely get past the start line; mutating the RFC 4475/5118 torture
messages and real-world captures (byte flips, truncations, inserted noise, duplicated
and removed header lines) reaches the typed header parsers, `validate`, the stream
framer, the SDP parser and the digest code with nearly valid input. Whatever the
mutation, each may raise only `SipParseError` (`SdpParseError` is one) — or, for the
digest client's policy, `DigestError`.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_sip_core import (
    AuthenticationInfo,
    DigestClient,
    DigestError,
    Message,
    Request,
    Response,
    SipParseError,
    StreamFramer,
    header_key,
    parse_message,
    parse_sdp,
    select_challenge,
    validate,
    verify_credentials,
)
from rvoip_sip_core._headers import HEADER_TYPES
from rvoip_sip_core._headers.auth import AuthChallenge, AuthCredentials


def _corpus_dir() -> Path | None:
    env = os.environ.get("RVOIP_CORPORA")
    root = Path(__file__).resolve().parents[3]
    for path in ([Path(env)] if env else []) + [root.parent / "shared" / "corpora"]:
        if path.is_dir():
            return path
    return None


def _load() -> tuple[list[bytes], list[bytes]]:
    base = _corpus_dir()
    if base is None:
        return [], []
    messages = [
        path.read_bytes()
        for folder in ("rfc4475", "rfc5118", "real-world")
        for path in sorted((base / folder).glob("*"))
        if path.suffix in (".dat", ".sip") and path.stat().st_size < 20_000
    ]
    sdps = [p.read_bytes() for p in sorted((base / "real-world" / "sdp").glob("*.sdp"))]
    return messages, sdps


CORPUS, SDP_CORPUS = _load()
needs_corpus = pytest.mark.skipif(not CORPUS, reason="test corpora not found (RVOIP_CORPORA)")


@st.composite
def mutated(draw: st.DrawFn, corpus: list[bytes]) -> bytes:
    """A corpus item with up to four mutations applied."""
    data = draw(st.sampled_from(corpus))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(("flip", "truncate", "insert", "dup", "drop", "swap")))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
        elif op == "truncate":
            data = data[:at]
        elif op == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=12)) + data[at:]
        else:
            lines = data.split(b"\n")
            i = draw(st.integers(0, max(len(lines) - 1, 0)))
            j = draw(st.integers(0, max(len(lines) - 1, 0)))
            if op == "dup":
                lines.insert(j, lines[i])
            elif op == "drop" and len(lines) > 1:
                del lines[i]
            else:
                lines[i], lines[j] = lines[j], lines[i]
            data = b"\n".join(lines)
    return data


def _touch_headers(msg: Message) -> None:
    """Typed access to every header line of the message: only SipParseError."""
    for name, _ in msg.headers:
        cls = HEADER_TYPES.get(header_key(name))
        if cls is None:
            continue
        for read in (msg.headers_of, msg.header):
            try:
                read(cls)
            except SipParseError:
                pass
    for attr in ("vias", "from_", "to", "cseq", "contacts", "routes", "record_routes"):
        try:
            getattr(msg, attr)
        except SipParseError:
            pass
    if isinstance(msg, Request):
        try:
            msg.uri  # noqa: B018 - parsing is the check
        except SipParseError:
            pass


def _touch_sdp(body: bytes) -> None:
    try:
        sdp = parse_sdp(body)
    except SipParseError:
        return
    str(sdp)
    for media in sdp.media:
        media.rtpmaps()
        media.fmtps()
        media.crypto()
        media.rtcp  # noqa: B018
        media.ptime  # noqa: B018
        sdp.direction_for(media)
        connection = sdp.connection_for(media)
        if connection is not None:
            connection.is_ip_literal  # noqa: B018


def _touch_digest(msg: Message) -> None:
    for name, value in msg.headers:
        key = header_key(name)
        try:
            if key in ("www-authenticate", "proxy-authenticate"):
                AuthChallenge.parse(value)
            elif key in ("authorization", "proxy-authorization"):
                creds = AuthCredentials.parse(value)
                verify_credentials(creds, method="INVITE", password="pw")
            elif key in ("authentication-info", "proxy-authentication-info"):
                AuthenticationInfo.parse(value)
        except SipParseError:
            pass
    if isinstance(msg, Response) and msg.status in (401, 407):
        challenges = []
        for value in msg.headers.get_all("WWW-Authenticate"):
            try:
                challenges.append(AuthChallenge.parse(value))
            except SipParseError:
                pass
        select_challenge(challenges)
        request = parse_message(
            b"REGISTER sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
            b"From: <sip:u@h>;tag=1\r\nTo: <sip:u@h>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
        assert isinstance(request, Request)
        try:
            DigestClient("u", "pw", random.Random(1)).authorize_request(request, msg)
        except (SipParseError, DigestError):
            pass


def _check(data: bytes) -> None:
    for strict in (False, True):
        try:
            msg = parse_message(data, strict=strict)
        except SipParseError as exc:
            status = exc.status
            assert 400 <= status <= 599
            continue
        _touch_headers(msg)
        try:
            validate(msg)
        except SipParseError:
            pass
        _touch_digest(msg)
        if msg.body:
            _touch_sdp(msg.body)
        try:
            parse_message(msg.encode())
        except SipParseError:
            pass


@needs_corpus
@given(mutated(CORPUS) if CORPUS else st.just(b""))
def test_mutated_corpus_messages_raise_only_sip_parse_error(data: bytes) -> None:
    _check(data)


@needs_corpus
@given(mutated(CORPUS) if CORPUS else st.just(b""), st.data())
def test_mutated_corpus_through_the_stream_framer(data: bytes, draws: st.DataObject) -> None:
    """A stream of mutated messages, cut anywhere: only SipParseError, frames parse."""
    framer = StreamFramer(max_head=8192, max_body=8192)
    cuts = sorted(draws.draw(st.sets(st.integers(0, len(data)), max_size=6)))
    for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
        try:
            frames = framer.feed(data[a:b])
        except SipParseError:
            return
        for frame in frames:
            if isinstance(frame, bytes):
                _check(frame)


@needs_corpus
@given(mutated(SDP_CORPUS) if SDP_CORPUS else st.just(b""))
def test_mutated_sdp_raises_only_sdp_parse_error(data: bytes) -> None:
    _touch_sdp(data)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_through_sdp_and_digest(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    _touch_sdp(data)
    for parse in (AuthChallenge.parse, AuthCredentials.parse, AuthenticationInfo.parse):
        try:
            parse(text)
        except SipParseError:
            pass
