"""Regressions found by the fuzz campaign (tools/fuzz, docs/security.md "Fuzzing")."""

from __future__ import annotations

import random

from rvoip_sip_core import (
    Authorization,
    DigestClient,
    DigestServer,
    Request,
    Response,
    make_request,
    parse_message,
    verify_credentials,
)

REGISTER = make_request(
    "REGISTER",
    "sip:example.com",
    from_="<sip:alice@example.com>;tag=1",
    to="<sip:alice@example.com>",
    call_id="c1",
    cseq=1,
    via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1",
)


def test_challenge_with_non_utf8_realm_is_answered() -> None:
    """F-DIGEST-1, client side: a 401 whose realm holds octets that are not UTF-8.

    Header values are decoded with ``surrogateescape``; the digest code then called
    ``str.encode()`` on the realm and raised UnicodeEncodeError out of
    ``DigestClient.authorize_request`` (found by the digest fuzz target with the realm
    ``sip.linpho\\x7f\\xc2_1-Wne.org``). The client must answer it, hashing the octets the
    realm had on the wire, and a verifier given the same octets must accept the answer.
    """
    wire = (
        b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n"
        b"From: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>;tag=2\r\n"
        b"Call-ID: c1\r\nCSeq: 1 REGISTER\r\n"
        b'WWW-Authenticate: Digest realm="sip.linpho\x7f\xc2_1", nonce="abc", qop="auth"\r\n'
        b"Content-Length: 0\r\n\r\n"
    )
    response = parse_message(wire)
    assert isinstance(response, Response)
    client = DigestClient("alice", "secret", random.Random(1))
    retry = client.authorize_request(REGISTER, response)
    assert isinstance(retry, Request)
    creds = retry.header(Authorization)
    assert creds is not None
    assert creds.realm == "sip.linpho\x7f\udcc2_1"
    assert verify_credentials(creds, method="REGISTER", password="secret")


def test_server_verifies_credentials_with_non_utf8_username() -> None:
    """F-DIGEST-1, server side: an Authorization whose username is not UTF-8.

    ``DigestServer.verify`` hashed the username with ``str.encode()`` and raised
    UnicodeEncodeError, so one REGISTER from the network could end the request handler.
    It must return a refusing verdict instead.
    """
    server = DigestServer("example.com", random.Random(7))
    nonce = server.make_nonce(100.0)
    raw = (
        b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK2\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c2\r\n"
        b'CSeq: 2 REGISTER\r\nAuthorization: Digest username="al\xffice", '
        b'realm="example.com", nonce="' + nonce.encode() + b'", uri="sip:example.com", '
        b'response="00000000000000000000000000000000", qop=auth, nc=00000001, cnonce="x"\r\n'
        b"Content-Length: 0\r\n\r\n"
    )
    request = parse_message(raw)
    creds = request.header(Authorization)
    assert creds is not None
    verdict = server.verify(creds, method="REGISTER", now=101.0, password="secret")
    assert not verdict.ok
    assert verdict.reason == "wrong response"
