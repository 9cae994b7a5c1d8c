"""Tests for digest authentication (rvoip_sip_core._digest)."""

from __future__ import annotations

import hashlib
import random
import secrets
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_sip_core import SipUsageError
from rvoip_sip_core._builders import make_request, make_response
from rvoip_sip_core._digest import (
    STRONG_ALGORITHMS,
    DigestClient,
    DigestError,
    DigestServer,
    build_credentials,
    compute_digest_response,
    compute_ha1,
    digest_hash,
    format_nc,
    hash_username,
    select_challenge,
    sha512_256_fallback,
    verify_credentials,
)
from rvoip_sip_core._headers.auth import (
    Authorization,
    ProxyAuthenticate,
    ProxyAuthorization,
    WWWAuthenticate,
)
from rvoip_sip_core._message import Request, Response
from rvoip_sip_core._parser import parse_message

# RFC 7616 §3.9.1 worked example.
NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
REALM = "http-auth@example.org"


def _rfc7616_challenge(algorithm: str) -> WWWAuthenticate:
    return WWWAuthenticate.parse(
        f'Digest realm="{REALM}", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{NONCE}", opaque="{OPAQUE}"'
    )


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_worked_examples(algorithm: str, expected: str) -> None:
    response = compute_digest_response(
        algorithm=algorithm,
        username="Mufasa",
        realm=REALM,
        password="Circle of Life",
        nonce=NONCE,
        method="GET",
        uri="/dir/index.html",
        qop="auth",
        nc=1,
        cnonce=CNONCE,
    )
    assert response == expected
    creds = build_credentials(
        _rfc7616_challenge(algorithm),
        username="Mufasa",
        password="Circle of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce=CNONCE,
    )
    assert isinstance(creds, Authorization)
    assert creds.response == expected
    assert creds.qop == "auth"
    assert creds.param("nc") == "00000001"
    assert creds.opaque == OPAQUE
    assert creds.algorithm == algorithm
    assert verify_credentials(creds, method="GET", password="Circle of Life")
    assert not verify_credentials(creds, method="GET", password="circle of life")
    assert not verify_credentials(creds, method="POST", password="Circle of Life")


def test_rfc2617_section_3_5_example() -> None:
    """RFC 2617 §3.5's response was computed with cnonce 0a4f113b (the header shows a typo).

    The published response 6629fae49393a05397450978507c4ef1 matches cnonce "0a4f113b",
    not the "0a4b113b" printed in the example header (a known erratum).
    """
    creds = Authorization.parse(
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
        'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert verify_credentials(creds, method="GET", password="Circle Of Life")
    ha1 = compute_ha1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life")
    assert verify_credentials(creds, method="GET", ha1=ha1)


def test_rfc2069_no_qop_form() -> None:
    challenge = WWWAuthenticate.parse('Digest realm="fritz.box", nonce="78B29326485EAE52"')
    creds = build_credentials(
        challenge, username="u", password="p", method="REGISTER", uri="sip:fritz.box", cnonce="x"
    )
    ha1 = hashlib.md5(b"u:fritz.box:p").hexdigest()
    ha2 = hashlib.md5(b"REGISTER:sip:fritz.box").hexdigest()
    assert creds.response == hashlib.md5(f"{ha1}:78B29326485EAE52:{ha2}".encode()).hexdigest()
    assert creds.qop is None
    assert creds.cnonce is None
    assert creds.nc is None
    assert creds.param("algorithm") is None
    assert verify_credentials(creds, method="REGISTER", password="p")


@pytest.mark.parametrize(
    "algorithm",
    ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess"],
)
@pytest.mark.parametrize("qop", ["auth", "auth-int"])
def test_all_algorithms_and_qops_verify(algorithm: str, qop: str) -> None:
    challenge = ProxyAuthenticate(
        "Digest",
        (("realm", "atlanta.com"), ("nonce", "abc"), ("algorithm", algorithm), ("qop", qop)),
    )
    body = b"v=0\r\n"
    creds = build_credentials(
        challenge,
        username="alice",
        password="secret",
        method="INVITE",
        uri="sip:bob@biloxi.com",
        cnonce="c0ffee",
        nc=7,
        body=body,
    )
    assert isinstance(creds, ProxyAuthorization)
    assert creds.qop == qop
    assert creds.nc == 7
    assert verify_credentials(creds, method="INVITE", password="secret", body=body)
    if qop == "auth-int":
        assert not verify_credentials(creds, method="INVITE", password="secret", body=b"x")


def test_sess_ha1_uses_nonce_and_cnonce() -> None:
    plain = compute_ha1("MD5", "u", "r", "p")
    sess = compute_ha1("MD5-sess", "u", "r", "p", nonce="n", cnonce="c")
    assert sess == hashlib.md5(f"{plain}:n:c".encode()).hexdigest()


def test_sha512_256_fallback_matches_fips_vector() -> None:
    # FIPS 180-4 example (NIST CSRC SHA512_256.pdf): SHA-512/256("abc").
    expected = "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
    assert sha512_256_fallback(b"abc") == expected
    assert digest_hash("SHA-512-256", "abc") == expected


@given(st.binary(max_size=300))
def test_sha512_256_fallback_matches_hashlib(data: bytes) -> None:
    try:
        reference = hashlib.new("sha512_256", data).hexdigest()
    except ValueError:
        pytest.skip("hashlib lacks sha512_256 here")
    assert sha512_256_fallback(data) == reference


def test_userhash() -> None:
    challenge = WWWAuthenticate.parse(
        'Digest realm="api@example.org", nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", '
        'algorithm=SHA-512-256, qop="auth", userhash=true'
    )
    creds = build_credentials(
        challenge,
        username="Jäsøn Doe",
        password="Secret, or not?",
        method="GET",
        uri="/doe.json",
        cnonce="NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
    )
    # RFC 7616 §3.9.2: the hashed user name.
    assert creds.username == "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b"
    assert creds.username == hash_username("SHA-512-256", "Jäsøn Doe", "api@example.org")
    assert creds.userhash
    assert verify_credentials(creds, method="GET", password="Secret, or not?", username="Jäsøn Doe")
    assert not verify_credentials(creds, method="GET", password="Secret, or not?")
    assert not verify_credentials(creds, method="GET", password="Secret, or not?", username="x")


def test_non_ascii_username_goes_in_username_star() -> None:
    challenge = WWWAuthenticate.parse('Digest realm="r", nonce="n", qop="auth"')
    creds = build_credentials(
        challenge, username="Jäsøn Doe", password="p", method="GET", uri="/", cnonce="c"
    )
    assert creds.param("username") is None
    assert creds.param("username*") == "UTF-8''J%C3%A4s%C3%B8n%20Doe"
    assert creds.username == "Jäsøn Doe"
    assert verify_credentials(Authorization.parse(str(creds)), method="GET", password="p")


def _answer(challenge: str) -> Authorization:
    return build_credentials(
        WWWAuthenticate.parse(challenge),
        username="u",
        password="p",
        method="GET",
        uri="/",
        cnonce="c",
    )


@pytest.mark.parametrize(
    "challenge",
    [
        'Basic realm="r"',
        'Digest realm="r"',
        'Digest realm="r", nonce="n", algorithm=SHA-1',
        'Digest realm="r", nonce="n", qop="auth-conf"',
    ],
)
def test_unanswerable_challenges(challenge: str) -> None:
    with pytest.raises(DigestError):
        _answer(challenge)


def test_response_needs_password_or_ha1() -> None:
    with pytest.raises(DigestError):
        compute_digest_response(username="u", realm="r", nonce="n", method="GET", uri="/")


def test_select_challenge_takes_topmost_supported() -> None:
    challenges = [
        WWWAuthenticate.parse('Basic realm="r"'),
        WWWAuthenticate.parse('Digest realm="r", nonce="n", algorithm=SHA-1'),
        WWWAuthenticate.parse('Digest realm="r", nonce="n", algorithm=SHA-256'),
        WWWAuthenticate.parse('Digest realm="r", nonce="n", algorithm=MD5'),
    ]
    chosen = select_challenge(challenges)
    assert chosen is challenges[2]
    assert select_challenge(challenges[:2]) is None


def test_client_counts_nonce_uses() -> None:
    client = DigestClient("alice", "pw", random.Random(5))
    challenge = WWWAuthenticate.parse('Digest realm="r", nonce="n1", qop="auth"')
    assert client.can_answer(challenge)
    first = client.authorize(challenge, "REGISTER", "sip:r")
    second = client.authorize(challenge, "REGISTER", "sip:r")
    assert (first.nc, second.nc) == (1, 2)
    assert first.cnonce != second.cnonce
    fresh = client.authorize(challenge.with_param("nonce", "n2"), "REGISTER", "sip:r")
    assert fresh.nc == 1
    proxy = client.authorize(ProxyAuthenticate(challenge.scheme, challenge.params), "INVITE", "x")
    assert isinstance(proxy, ProxyAuthorization)


def test_client_is_deterministic_with_seeded_rng() -> None:
    challenge = WWWAuthenticate.parse('Digest realm="r", nonce="n", qop="auth"')
    a = DigestClient("u", "p", random.Random(1)).authorize(challenge, "GET", "/")
    b = DigestClient("u", "p", random.Random(1)).authorize(challenge, "GET", "/")
    assert a == b


def _server(**kw: object) -> DigestServer:
    return DigestServer("atlanta.com", random.Random(99), **kw)  # type: ignore[arg-type]


def test_server_accepts_then_rejects_replay() -> None:
    server = _server(algorithms=("SHA-256", "MD5"))
    challenges = server.challenge(100.0)
    assert [c.algorithm for c in challenges] == ["SHA-256", "MD5"]
    assert challenges[0].nonce == challenges[1].nonce
    client = DigestClient("bob", "zanzibar", random.Random(3))
    chosen = select_challenge(challenges)
    assert chosen is not None
    creds = client.authorize(chosen, "REGISTER", "sip:atlanta.com")
    verdict = server.verify(
        creds, method="REGISTER", now=101.0, password="zanzibar", request_uri="sip:atlanta.com"
    )
    assert verdict.ok
    replay = server.verify(creds, method="REGISTER", now=102.0, password="zanzibar")
    assert not replay.ok
    assert "replay" in replay.reason
    again = client.authorize(chosen, "REGISTER", "sip:atlanta.com")
    assert server.verify(again, method="REGISTER", now=103.0, password="zanzibar").ok


def test_server_rejections() -> None:
    server = _server()
    (challenge,) = server.challenge(0.0)
    client = DigestClient("bob", "pw", random.Random(4))
    creds = client.authorize(challenge, "INVITE", "sip:x")
    assert not server.verify(creds, method="INVITE", now=1.0, password="bad").ok
    forged = creds.with_param("nonce", "A" * 43)
    assert server.verify(forged, method="INVITE", now=1.0, password="pw").reason == (
        "nonce not issued here"
    )
    other_realm = creds.with_param("realm", "evil.com")
    assert not server.verify(other_realm, method="INVITE", now=1.0, password="pw").ok
    no_qop = creds.with_param("qop", None)
    assert not server.verify(no_qop, method="INVITE", now=1.0, password="pw").ok
    wrong_uri = server.verify(creds, method="INVITE", now=1.0, password="pw", request_uri="sip:y")
    assert not wrong_uri.ok
    sha = creds.with_param("algorithm", "SHA-256")
    assert not server.verify(sha, method="INVITE", now=1.0, password="pw").ok
    # A nonce from another server instance (different secret) is not ours.
    other = DigestServer("atlanta.com", random.Random(100))
    assert not other.verify(creds, method="INVITE", now=1.0, password="pw").ok


def test_server_stale_nonce() -> None:
    server = _server(nonce_lifetime=30.0)
    (challenge,) = server.challenge(0.0)
    creds = DigestClient("bob", "pw", random.Random(4)).authorize(challenge, "INVITE", "sip:x")
    verdict = server.verify(creds, method="INVITE", now=31.0, password="pw")
    assert (verdict.ok, verdict.stale) == (False, True)
    (stale_challenge,) = server.challenge(31.0, stale=True)
    assert stale_challenge.stale


def test_server_proxy_challenge_and_ha1() -> None:
    server = _server(algorithms=("SHA-512-256",), opaque="op")
    (challenge,) = server.challenge(5.0, proxy=True)
    assert isinstance(challenge, ProxyAuthenticate)
    assert challenge.opaque == "op"
    creds = DigestClient("bob", "pw", random.Random(4)).authorize(challenge, "INVITE", "sip:x")
    assert isinstance(creds, ProxyAuthorization)
    ha1 = compute_ha1("SHA-512-256", "bob", "atlanta.com", "pw")
    assert server.verify(creds, method="INVITE", now=6.0, ha1=ha1).ok


def test_server_bounds_its_nonce_table() -> None:
    server = _server(max_nonces=3)
    client = DigestClient("bob", "pw", random.Random(4))
    for i in range(10):
        (challenge,) = server.challenge(float(i))
        creds = client.authorize(challenge, "OPTIONS", "sip:x")
        assert server.verify(creds, method="OPTIONS", now=float(i), password="pw").ok
    assert len(server._seen) <= 3


def test_authentication_info_rspauth() -> None:
    server = _server()
    (challenge,) = server.challenge(0.0)
    creds = DigestClient("bob", "pw", random.Random(4)).authorize(challenge, "INVITE", "sip:x")
    info = server.authentication_info(creds, password="pw", now=1.0)
    expected = compute_digest_response(
        username="bob",
        realm="atlanta.com",
        password="pw",
        nonce=creds.nonce or "",
        method="",
        uri="sip:x",
        qop="auth",
        nc=1,
        cnonce=creds.cnonce,
    )
    assert info.rspauth == expected
    assert info.nextnonce is not None
    assert info.nc == 1


def test_authentication_info_with_userhash_needs_the_real_username() -> None:
    """With userhash the credentials carry H(user:realm): rspauth over it would be wrong.

    authentication_info used to hash the hashed name silently; now it asks for the name.
    """
    challenge = WWWAuthenticate.parse(
        'Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth", userhash=true'
    )
    creds = build_credentials(
        challenge, username="bob", password="pw", method="INVITE", uri="sip:x", cnonce="c"
    )
    server = _server()
    with pytest.raises(SipUsageError):
        server.authentication_info(creds, password="pw")
    info = server.authentication_info(creds, password="pw", username="bob")
    expected = compute_digest_response(
        algorithm="SHA-256",
        username="bob",
        realm="r",
        password="pw",
        nonce="n",
        method="",
        uri="sip:x",
        qop="auth",
        nc=1,
        cnonce="c",
    )
    assert info.rspauth == expected


def test_format_nc() -> None:
    assert format_nc(1) == "00000001"
    assert format_nc(0xABCDEF12) == "abcdef12"


@given(
    st.sampled_from(["MD5", "SHA-256", "SHA-512-256-sess"]),
    st.text(min_size=1, max_size=12),
    st.text(max_size=12),
    st.binary(max_size=40),
)
def test_build_then_verify_property(algorithm: str, user: str, password: str, body: bytes) -> None:
    challenge = WWWAuthenticate(
        "Digest",
        (("realm", "r"), ("nonce", "n"), ("algorithm", algorithm), ("qop", "auth-int")),
    )
    creds = build_credentials(
        challenge,
        username=user,
        password=password,
        method="MESSAGE",
        uri="sip:a@b",
        cnonce="c",
        body=body,
    )
    wire = Authorization.parse(str(creds))
    assert wire.username == user
    assert verify_credentials(wire, method="MESSAGE", password=password, body=body)


# -- message level: answering a 401/407 ------------------------------------------------


def _invite(body: bytes = b"") -> Request:
    return make_request(
        "INVITE",
        "sip:bob@biloxi.com",
        from_="<sip:alice@atlanta.com>;tag=1928301774",
        to="<sip:bob@biloxi.com>",
        call_id="a84b4c76e66710",
        cseq=314159,
        via="SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds",
        body=body,
        content_type="application/sdp" if body else None,
    )


def test_authorize_request_end_to_end_401() -> None:
    server = _server(algorithms=("SHA-256", "MD5"))
    request = _invite(b"v=0\r\n")
    challenge = make_response(
        request,
        401,
        to_tag="xyz",
        headers=[("WWW-Authenticate", c) for c in server.challenge(10.0)],
    )
    wire = parse_message(challenge.encode())
    assert isinstance(wire, Response)
    client = DigestClient("alice", "pw", random.Random(8))
    retried = client.authorize_request(request, wire)
    assert retried is not None
    assert request.header(Authorization) is None  # the original is untouched
    creds = retried.header(Authorization)
    assert creds is not None
    assert creds.algorithm == "SHA-256"
    assert creds.uri == "sip:bob@biloxi.com"
    received = parse_message(retried.encode())
    assert isinstance(received, Request)
    got = received.header(Authorization)
    assert got is not None
    assert server.verify(got, method=received.method, now=11.0, password="pw").ok
    # The same nonce challenged again (not stale): the password was wrong; stop.
    assert client.authorize_request(retried, wire) is None


def test_authorize_request_407_keeps_other_realms() -> None:
    request = _invite().append_header(
        "Proxy-Authorization", 'Digest username="a", realm="other.com", nonce="q", uri="x"'
    )
    request = request.append_header(
        "Proxy-Authorization", 'Digest username="a", realm="atlanta.com", nonce="old", uri="x"'
    )
    response = make_response(
        request,
        407,
        headers=[
            ("Proxy-Authenticate", 'Digest realm="atlanta.com", nonce="n1", qop="auth"'),
            ("Proxy-Authenticate", 'Digest realm="atlanta.com", nonce="n1", algorithm=MD5'),
            ("Proxy-Authenticate", "Digest realm=broken=value"),
        ],
    )
    client = DigestClient("alice", "pw", random.Random(8))
    retried = client.authorize_request(request, response)
    assert retried is not None
    realms = [c.realm for c in retried.headers_of(ProxyAuthorization)]
    assert realms == ["other.com", "atlanta.com"]
    assert retried.headers_of(ProxyAuthorization)[1].nonce == "n1"
    # stale=true with a known nonce is answered again.
    stale = make_response(
        request,
        407,
        headers=[("Proxy-Authenticate", 'Digest realm="atlanta.com", nonce="n1", stale=true')],
    )
    assert client.authorize_request(request, stale) is not None


def test_authorize_request_nothing_to_answer() -> None:
    request = _invite()
    client = DigestClient("alice", "pw", random.Random(8))
    assert client.authorize_request(request, make_response(request, 486)) is None
    basic = make_response(request, 401, headers=[("WWW-Authenticate", 'Basic realm="r"')])
    assert client.authorize_request(request, basic) is None


@pytest.mark.parametrize(
    "name",
    [
        "asterisk-18.2-401-register.sip",
        "cirpack-401-register.sip",
        "cirpack-401-no-reason-folded.sip",
        "flexisip-1.0.2-401-register.sip",
        "fritzbox-401-register.sip",
    ],
)
def test_real_world_401s_are_answered(corpora: Path, name: str) -> None:
    response = parse_message((corpora / "real-world" / name).read_bytes())
    assert isinstance(response, Response)
    challenge = response.header(WWWAuthenticate)
    assert challenge is not None
    assert challenge.is_digest
    request = make_request(
        "REGISTER",
        "sip:example.com",
        from_="<sip:u@example.com>;tag=1",
        to="<sip:u@example.com>",
        call_id="c",
        cseq=2,
        via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx",
    )
    retried = DigestClient("u", "secret", random.Random(1)).authorize_request(request, response)
    assert retried is not None
    creds = retried.header(Authorization)
    assert creds is not None
    assert creds.realm == challenge.realm
    assert creds.nonce == challenge.nonce
    assert creds.opaque == challenge.opaque
    assert verify_credentials(creds, method="REGISTER", password="secret")


def test_real_world_credentials_parse(corpora: Path) -> None:
    rw = corpora / "real-world"
    linphone = parse_message((rw / "linphone-3.8.5-register-tls.sip").read_bytes())
    creds = linphone.header(Authorization)
    assert creds is not None
    assert (creds.username, creds.qop, creds.nc) == ("gbi", "auth", 1)
    compact = parse_message((rw / "linphone-3.3.99-register-compact.sip").read_bytes())
    proxy = compact.header(ProxyAuthorization)
    assert proxy is not None
    assert proxy.response == "eed376ff7c963441255ec66594e470e7"


@given(st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=12))
def test_server_accepts_only_growing_nonce_counts(counts: list[int]) -> None:
    server = _server()
    (challenge,) = server.challenge(0.0)
    accepted: list[int] = []
    for nc in counts:
        creds = build_credentials(
            challenge,
            username="bob",
            password="pw",
            method="BYE",
            uri="sip:x",
            cnonce=f"c{nc}",
            nc=nc,
        )
        if server.verify(creds, method="BYE", now=1.0, password="pw").ok:
            accepted.append(nc)
    assert accepted == sorted(set(accepted))
    expected: list[int] = []
    for nc in counts:
        if not expected or nc > expected[-1]:
            expected.append(nc)
    assert accepted == expected


def test_server_treats_a_nonce_with_an_evicted_record_as_stale() -> None:
    """Issue 10: a nonce whose nc record was evicted could be replayed.

    The replay table is bounded (``max_nonces``); when a live record was evicted, the
    next use of that nonce looked like a first use (last nc 0), so a captured response
    with nc=1 was accepted again. Now such a nonce is stale: the client gets a new
    nonce (``stale=true``) and the replay is refused.
    """
    server = _server(max_nonces=2)
    client = DigestClient("bob", "pw", random.Random(4))
    captured = []
    for i in range(3):
        (challenge,) = server.challenge(float(i))
        creds = client.authorize(challenge, "OPTIONS", "sip:x")
        assert server.verify(creds, method="OPTIONS", now=float(i), password="pw").ok
        captured.append(creds)
    replay = server.verify(captured[0], method="OPTIONS", now=3.0, password="pw")
    assert (replay.ok, replay.stale) == (False, True)
    # A nonce issued after the eviction is still accepted on its first use.
    (fresh,) = server.challenge(4.0)
    creds = client.authorize(fresh, "OPTIONS", "sip:x")
    assert server.verify(creds, method="OPTIONS", now=4.0, password="pw").ok


def test_server_refuses_rfc2069_responses_unless_allowed() -> None:
    """Issue 10: ``qop=()`` silently made RFC 2069 challenges whose responses replay.

    A qop-less response has no nonce count, so it can be replayed until the nonce
    expires. Such a server now needs ``allow_rfc2069=True``; without it the
    configuration is refused, and a qop-less response is refused by a qop server.
    """
    with pytest.raises(SipUsageError):
        _server(qop=())
    legacy = _server(qop=(), allow_rfc2069=True)
    (challenge,) = legacy.challenge(0.0)
    assert challenge.qop_options == ()
    creds = DigestClient("bob", "pw", random.Random(4)).authorize(challenge, "INVITE", "sip:x")
    assert creds.qop is None
    assert legacy.verify(creds, method="INVITE", now=1.0, password="pw").ok
    modern = _server()
    (challenge,) = modern.challenge(0.0)
    # Forge the RFC 2069 form against a qop=auth nonce: refused.
    creds = build_credentials(
        challenge.with_param("qop", None),
        username="bob",
        password="pw",
        method="INVITE",
        uri="sip:x",
        cnonce="c",
    )
    verdict = modern.verify(creds, method="INVITE", now=1.0, password="pw")
    assert not verdict.ok
    assert "qop missing" in verdict.reason


def test_server_nonces_come_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an injected rng, the secret and the nonces' random parts use ``secrets``."""
    calls: list[int] = []
    real = secrets.token_bytes

    def recording(count: int) -> bytes:
        calls.append(count)
        return real(count)

    monkeypatch.setattr(secrets, "token_bytes", recording)
    server = DigestServer("atlanta.com")
    assert calls == [32]
    first, second = server.make_nonce(1.0), server.make_nonce(1.0)
    assert calls == [32, 12, 12]
    assert first != second
    (challenge,) = server.challenge(1.0)
    creds = DigestClient("bob", "pw").authorize(challenge, "INVITE", "sip:x")
    assert server.verify(creds, method="INVITE", now=2.0, password="pw").ok


def _challenge(algorithm: str, qop: str | None = "auth") -> WWWAuthenticate:
    params = [("realm", "r"), ("nonce", "n"), ("algorithm", algorithm)]
    if qop is not None:
        params.append(("qop", qop))
    return WWWAuthenticate("Digest", tuple(params))


def test_client_policy_refuses_md5_and_qopless_downgrades() -> None:
    """Issue 10: a man in the middle could strip SHA-256 challenges and qop.

    The client answered whatever it was offered, MD5 and RFC 2069 included. With
    ``allowed_algorithms=STRONG_ALGORITHMS`` and ``require_qop=True`` it refuses both.
    """
    strict = DigestClient("u", "p", allowed_algorithms=STRONG_ALGORITHMS, require_qop=True)
    assert "MD5" not in STRONG_ALGORITHMS
    assert not strict.can_answer(_challenge("MD5"))
    assert not strict.can_answer(_challenge("SHA-256", qop=None))
    assert strict.can_answer(_challenge("SHA-256"))
    with pytest.raises(DigestError):
        strict.authorize(_challenge("MD5"), "INVITE", "sip:x")
    with pytest.raises(DigestError):
        strict.authorize(_challenge("SHA-256", qop=None), "INVITE", "sip:x")
    # The permissive default still answers both (interoperability with old servers).
    lax = DigestClient("u", "p", random.Random(1))
    assert lax.can_answer(_challenge("MD5", qop=None))
    request = make_request(
        "INVITE",
        "sip:x",
        from_="<sip:u@r>;tag=1",
        to="<sip:x>",
        call_id="c",
        cseq=1,
        via="SIP/2.0/UDP h;branch=z9hG4bK1",
    )
    md5_only = make_response(request, 401, headers=[("WWW-Authenticate", _challenge("MD5"))])
    assert strict.authorize_request(request, md5_only) is None
    both = make_response(
        request,
        401,
        headers=[
            ("WWW-Authenticate", _challenge("MD5")),
            ("WWW-Authenticate", _challenge("SHA-256")),
        ],
    )
    retried = strict.authorize_request(request, both)
    assert retried is not None
    creds = retried.header(Authorization)
    assert creds is not None
    assert creds.algorithm == "SHA-256"


def test_non_utf8_octets_in_credentials_do_not_escape_as_unicode_errors() -> None:
    """Found by the mutated-corpus property: a non-UTF-8 byte in a nonce crashed verify.

    The parser keeps undecodable octets as surrogates (surrogateescape); the digest code
    hashed ``text.encode()``, so ``verify_credentials`` raised UnicodeEncodeError from a
    single flipped byte in an Authorization header. The hashes now cover the octets as
    received, and such credentials simply do not verify.
    """
    msg = parse_message(
        b"REGISTER sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: <sip:u@h>;tag=1\r\nTo: <sip:u@h>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n"
        b'Authorization: Digest username="u\x80", realm="r", nonce="\x80n", uri="sip:h", '
        b'response="00000000000000000000000000000000"\r\nContent-Length: 0\r\n\r\n'
    )
    creds = msg.header(Authorization)
    assert creds is not None
    assert not verify_credentials(creds, method="REGISTER", password="pw")
    expected = compute_digest_response(
        username="u\udc80",
        realm="r",
        password="pw",
        nonce="\udc80n",
        method="REGISTER",
        uri="sip:h",
    )
    good = creds.with_param("response", expected)
    assert verify_credentials(good, method="REGISTER", password="pw")
