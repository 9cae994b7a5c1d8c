"""Tests for the authentication headers (rvoip_sip_core._headers.auth)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_sip_core._errors import SipParseError
from rvoip_sip_core._headers.auth import (
    AuthenticationInfo,
    Authorization,
    ProxyAuthenticate,
    ProxyAuthorization,
    WWWAuthenticate,
)

RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)


def test_challenge_fields() -> None:
    ch = WWWAuthenticate.parse(RFC7616_CHALLENGE + ", stale=FALSE, userhash=true")
    assert ch.scheme == "Digest"
    assert ch.is_digest
    assert ch.realm == "http-auth@example.org"
    assert ch.nonce == "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
    assert ch.opaque == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    assert ch.algorithm == "SHA-256"
    assert ch.qop_options == ("auth", "auth-int")
    assert ch.stale is False
    assert ch.userhash is True
    assert WWWAuthenticate.NAME == "WWW-Authenticate"
    assert WWWAuthenticate.MULTI is False


def test_challenge_serializes_with_rfc_quoting() -> None:
    ch = WWWAuthenticate.parse(RFC7616_CHALLENGE)
    assert str(ch) == RFC7616_CHALLENGE
    assert WWWAuthenticate.parse(str(ch)) == ch


def test_algorithm_defaults_to_md5_and_stale_true() -> None:
    ch = ProxyAuthenticate.parse('Digest realm="fritz.box", nonce="78B29326485EAE52", stale=TRUE')
    assert ch.algorithm == "MD5"
    assert ch.stale is True
    assert ch.qop_options == ()
    assert ch.param("REALM") == "fritz.box"


def test_folded_and_compact_challenge() -> None:
    """cirpack's 401 folds the header after the first comma and packs params tightly."""
    value = (
        'Digest realm="sip.ovh.net",\r\n   nonce="24212965507cde726e8bc37e04686459",'
        'opaque="241b9fb347752f2",stale=false,algorithm=MD5'
    )
    ch = WWWAuthenticate.parse(value)
    assert ch.nonce == "24212965507cde726e8bc37e04686459"
    assert ch.opaque == "241b9fb347752f2"
    assert ch.algorithm == "MD5"


def test_credentials_fields() -> None:
    value = (
        'Digest username="8117396", realm="Realm", nonce="MTMw", uri="sip:linphone.net", '
        'response="eed376ff7c963441255ec66594e470e7", algorithm=MD5, cnonce="0a4f113b", '
        "qop=auth, nc=00000001"
    )
    cred = ProxyAuthorization.parse(value)
    assert cred.username == "8117396"
    assert cred.uri == "sip:linphone.net"
    assert cred.response == "eed376ff7c963441255ec66594e470e7"
    assert cred.qop == "auth"
    assert cred.nc == 1
    assert cred.cnonce == "0a4f113b"
    assert str(cred) == value
    assert ProxyAuthorization.parse(str(cred)) == cred


def test_single_quoted_params_are_tolerated() -> None:
    """Ekiga 3.2.7 sends single-quoted values; they are kept as opaque token text."""
    cred = Authorization.parse(
        "Digest username='twolmsted', realm='sipsorcery.com', uri='sip:sip.sipsorcery.com', "
        "algorithm=MD5, response='e9e190a05c482e0c287829ecf6d42207'"
    )
    assert cred.username == "'twolmsted'"
    assert cred.algorithm == "MD5"


def test_quoted_pair_and_username_star() -> None:
    cred = Authorization.parse(r'Digest username="a\"b\\c", realm="r"')
    assert cred.username == 'a"b\\c'
    assert Authorization.parse(str(cred)) == cred
    # RFC 7616 §3.9.2 style username* (RFC 5987 ext-value).
    star = Authorization.parse("Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, realm=\"r\"")
    assert star.username == "Jäsøn Doe"
    assert "username*=UTF-8''J%C3%A4s%C3%B8n%20Doe" in str(star)
    assert Authorization.parse("Digest username*=nope").username is None


def test_other_schemes_and_token68() -> None:
    basic = Authorization.parse("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    assert basic.token68 == "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    assert basic.params == ()
    assert str(basic) == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    unknown = Authorization.parse("NoOneKnowsThisScheme opaque-data=here")
    assert unknown.scheme == "NoOneKnowsThisScheme"
    assert not unknown.is_digest
    assert unknown.param("opaque-data") == "here"
    assert str(Authorization.parse("Digest")) == "Digest"


def test_with_param() -> None:
    ch = WWWAuthenticate.parse('Digest realm="r", nonce="n"')
    assert ch.with_param("nonce", "m").nonce == "m"
    assert ch.with_param("stale", "TRUE").stale is True
    assert ch.with_param("realm", None).realm is None


def test_nc_is_validated() -> None:
    assert Authorization.parse("Digest nc=0x1").nc is None
    assert Authorization.parse("Digest nc=0000000a").nc == 10


def test_authentication_info() -> None:
    value = 'nextnonce="abc", qop=auth, rspauth="d0b2", cnonce="0a4f113b", nc=00000001'
    info = AuthenticationInfo.parse(value)
    assert info.nextnonce == "abc"
    assert info.qop == "auth"
    assert info.rspauth == "d0b2"
    assert info.cnonce == "0a4f113b"
    assert info.nc == 1
    assert str(info) == value
    assert AuthenticationInfo.NAME == "Authentication-Info"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        'Digest realm="unterminated',
        "Digest realm realm",
        "Digest =x",
        ",Digest",
        "Digest a=b c",
    ],
)
def test_malformed_raise_parse_error(bad: str) -> None:
    with pytest.raises(SipParseError):
        WWWAuthenticate.parse(bad)


def test_authentication_info_empty_is_error() -> None:
    with pytest.raises(SipParseError):
        AuthenticationInfo.parse("")


_names = st.from_regex(r"[A-Za-z][A-Za-z0-9\-_.]{0,10}", fullmatch=True).filter(
    lambda s: s.lower() != "username*"
)
_values = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20
)
_params = st.lists(st.tuples(_names, _values), max_size=8).map(tuple)
_schemes = st.sampled_from(["Digest", "NewAuth", "digest"])


@given(_schemes, _params)
def test_challenge_round_trip(scheme: str, params: tuple[tuple[str, str], ...]) -> None:
    for cls in (WWWAuthenticate, ProxyAuthenticate):
        header = cls(scheme, params)
        assert cls.parse(str(header)) == header


@given(_schemes, _params)
def test_credentials_round_trip(scheme: str, params: tuple[tuple[str, str], ...]) -> None:
    for cls in (Authorization, ProxyAuthorization):
        header = cls(scheme, params)
        assert cls.parse(str(header)) == header


@given(_params.filter(bool))
def test_authentication_info_round_trip(params: tuple[tuple[str, str], ...]) -> None:
    info = AuthenticationInfo(params)
    assert AuthenticationInfo.parse(str(info)) == info


@given(st.text(max_size=80))
def test_arbitrary_text_only_parse_error(text: str) -> None:
    for cls in (WWWAuthenticate, Authorization, AuthenticationInfo):
        try:
            str(cls.parse(text))
        except SipParseError:
            pass
