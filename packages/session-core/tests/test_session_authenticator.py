"""``Authenticator``: challenges, verification of retries, 403/400, stale nonces (sans-IO)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rvoip_session_core import DEFAULT_AUTH_METHODS, Authenticator, AuthSettings
from rvoip_sip_core import (
    DigestClient,
    Request,
    WWWAuthenticate,
    compute_ha1,
    make_request,
    parse_uri,
)

PASSWORDS = {"alice": "secret"}


def invite(*headers: tuple[str, str], method: str = "INVITE") -> Request:
    return make_request(
        method,
        parse_uri("sip:bob@pbx.test"),
        from_="<sip:alice@pbx.test>;tag=a",
        to="<sip:bob@pbx.test>",
        call_id="call-1",
        cseq=1,
        via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx",
        contact=None,
        headers=list(headers),
    )


def answered(auth: Authenticator, password: str, now: float = 0.0) -> Request:
    """The INVITE retried with credentials for ``auth``'s first challenge."""
    first = auth.check(invite(), now)
    assert first.status == 401
    challenge = WWWAuthenticate.parse(first.headers[0][1])
    client = DigestClient("alice", password, rng=random.Random(1))
    creds = client.authorize(challenge, "INVITE", "sip:bob@pbx.test")
    return invite(("Authorization", str(creds)))


def test_default_methods_never_include_ack_cancel_bye() -> None:
    assert {"INVITE", "REGISTER", "SUBSCRIBE", "MESSAGE", "REFER"} == DEFAULT_AUTH_METHODS
    with pytest.raises(ValueError):
        Authenticator("pbx.test", PASSWORDS, methods={"ACK"})


def test_challenge_offers_each_algorithm_with_one_nonce() -> None:
    auth = Authenticator("pbx.test", PASSWORDS, rng=random.Random(3))
    result = auth.check(invite(), 0.0)
    assert (result.status, result.reason) == (401, "Unauthorized")
    challenges = [WWWAuthenticate.parse(v) for _, v in result.headers]
    assert [c.algorithm for c in challenges] == ["SHA-256", "MD5"]
    assert len({c.nonce for c in challenges}) == 1
    assert all(c.realm == "pbx.test" and c.qop_options == ("auth",) for c in challenges)


def test_right_password_proceeds_with_the_user_and_a_replay_is_refused() -> None:
    auth = Authenticator("pbx.test", PASSWORDS, rng=random.Random(3))
    retry = answered(auth, "secret")
    ok = auth.check(retry, 1.0)
    assert ok.proceed
    assert ok.user == "alice"
    assert auth.check(retry, 2.0).status == 403  # same nonce count again: a replay


def test_wrong_password_and_unknown_user_get_403() -> None:
    auth = Authenticator("pbx.test", PASSWORDS, rng=random.Random(3))
    assert auth.check(answered(auth, "guess"), 1.0).status == 403
    other = Authenticator("pbx.test", {"bob": "x"}, rng=random.Random(3))
    assert other.check(answered(other, "secret"), 1.0).status == 403


def test_old_nonce_gets_a_stale_challenge() -> None:
    auth = Authenticator("pbx.test", PASSWORDS, settings=AuthSettings(nonce_lifetime=10))
    result = auth.check(answered(auth, "secret", now=0.0), 50.0)
    assert result.status == 401
    assert WWWAuthenticate.parse(result.headers[0][1]).stale


def test_malformed_or_incomplete_credentials_get_400() -> None:
    auth = Authenticator("pbx.test", PASSWORDS)
    assert auth.check(invite(("Authorization", 'Digest username="a,')), 0.0).status == 400
    incomplete = 'Digest username="alice", realm="pbx.test", nonce="abc"'
    assert auth.check(invite(("Authorization", incomplete)), 0.0).status == 400


def test_methods_not_listed_pass_but_their_credentials_are_still_read() -> None:
    auth = Authenticator("pbx.test", PASSWORDS, methods=(), rng=random.Random(3))
    assert auth.check(invite(), 0.0).proceed
    retry = answered_with_challenge(auth)
    result = auth.check(retry, 1.0)
    assert result.proceed
    assert result.user == "alice"


def answered_with_challenge(auth: Authenticator) -> Request:
    challenge = WWWAuthenticate.parse(auth.challenge(0.0).headers[0][1])
    creds = DigestClient("alice", "secret").authorize(challenge, "INVITE", "sip:bob@pbx.test")
    return invite(("Authorization", str(creds)))


def test_ha1_lookup_and_proxy_flavour() -> None:
    def ha1(user: str, algorithm: str) -> str | None:
        return compute_ha1(algorithm, user, "pbx.test", "secret") if user == "alice" else None

    auth = Authenticator("pbx.test", ha1=ha1, proxy=True, settings=AuthSettings(("MD5",)))
    first = auth.check(invite(), 0.0)
    assert first.status == 407
    assert first.headers[0][0] == "Proxy-Authenticate"
    from rvoip_sip_core import ProxyAuthenticate

    challenge = ProxyAuthenticate.parse(first.headers[0][1])
    creds = DigestClient("alice", "secret").authorize(challenge, "INVITE", "sip:bob@pbx.test")
    result = auth.check(invite(("Proxy-Authorization", str(creds))), 1.0)
    assert result.proceed
    assert result.user == "alice"
    with pytest.raises(ValueError):
        Authenticator("pbx.test")  # neither passwords nor ha1


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_authorization_value_gives_an_answer_never_an_exception(value: str) -> None:
    """Hostile credentials: only proceed/401/403/400 come out, never an exception."""
    auth = Authenticator("pbx.test", PASSWORDS)
    safe = value.replace("\r", " ").replace("\n", " ")
    result = auth.check(invite(("Authorization", safe)), 0.0)
    assert result.status in (0, 400, 401, 403)
    assert result.user is None


def test_digest_uri_naming_another_resource_gets_400() -> None:
    """RFC 2617 §3.2.2.5: credentials computed for another Request-URI are refused with 400
    (seen with SIPp 3.6, whose [authentication] puts sip:host:port in the uri)."""
    auth = Authenticator("pbx.test", PASSWORDS, rng=random.Random(3))
    challenge = WWWAuthenticate.parse(auth.challenge(0.0).headers[0][1])
    creds = DigestClient("alice", "secret").authorize(challenge, "INVITE", "sip:pbx.test")
    result = auth.check(invite(("Authorization", str(creds))), 1.0)
    assert result.status == 400
    assert "uri" in result.reason


def test_password_guessing_is_locked_out_per_source_and_user() -> None:
    """Issue 12 left online guessing unlimited: after ``max_failures`` wrong passwords from
    one source for one user in ``failure_window``, even the right password gets 403 until
    the window has passed."""
    auth = Authenticator(
        "pbx.test",
        {"alice": "secret", "bob": "hunter2"},
        settings=AuthSettings(max_failures=3, failure_window=60.0),
        rng=random.Random(5),
    )
    for attempt in range(3):
        assert auth.check(answered(auth, f"guess{attempt}", now=1.0), 1.0).status == 403
    assert auth.check(answered(auth, "secret", now=2.0), 2.0).status == 403  # locked out
    assert auth.check(answered(auth, "secret", now=62.0), 62.0).proceed  # window passed


def test_lockout_can_be_turned_off() -> None:
    """``max_failures=0``: no lock-out (every attempt is verified)."""
    auth = Authenticator(
        "pbx.test", PASSWORDS, settings=AuthSettings(max_failures=0), rng=random.Random(6)
    )
    for attempt in range(20):
        assert auth.check(answered(auth, f"guess{attempt}"), 0.0).status == 403
    assert auth.check(answered(auth, "secret"), 0.0).proceed
