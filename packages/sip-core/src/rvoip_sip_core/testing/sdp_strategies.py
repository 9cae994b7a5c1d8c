"""Hypothesis strategies for SDP values (for this package's tests and the layers above).

Every generated :class:`SessionDescription` is in the form the parser gives back, so
``parse_sdp(str(sdp)) == sdp`` holds: no trailing whitespace in text fields, RFC-order
lines, IP6 connections without a TTL.
"""

from __future__ import annotations

from hypothesis import strategies as st

from .._sdp import (
    DIRECTIONS,
    Attribute,
    Bandwidth,
    Connection,
    Crypto,
    CryptoKey,
    Fmtp,
    MediaDescription,
    Origin,
    Rtcp,
    RtpMap,
    SessionDescription,
    TimeZone,
    Timing,
)

__all__ = [
    "attributes",
    "connections",
    "cryptos",
    "media_descriptions",
    "origins",
    "rtpmaps",
    "session_descriptions",
    "text_values",
    "words",
]

_TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def words(min_size: int = 1, max_size: int = 12) -> st.SearchStrategy[str]:
    """A field without whitespace or ``/`` / ``:`` (usernames, nettypes, encodings)."""
    return st.text(_TOKEN_ALPHABET, min_size=min_size, max_size=max_size)


def text_values(min_size: int = 0, max_size: int = 30) -> st.SearchStrategy[str]:
    """Free text for s=, i=, a= values.

    Any non-surrogate character except line breaks, with no trailing space or tab.
    """
    chars = st.characters(exclude_categories=["Cs"], exclude_characters="\r\n")
    return (
        st.text(chars, min_size=min_size, max_size=max_size)
        .map(lambda s: s.rstrip(" \t"))
        .filter(lambda s: len(s) >= min_size)
    )


_uint = st.integers(min_value=0, max_value=2**40)
_port = st.integers(min_value=0, max_value=65535)
_ip4 = st.ip_addresses(v=4).map(str)
_ip6 = st.ip_addresses(v=6).map(str)


def origins() -> st.SearchStrategy[Origin]:
    """Well-formed ``o=`` values."""
    return st.builds(
        Origin,
        words(),
        _uint.map(str),
        _uint.map(str),
        st.just("IN"),
        st.just("IP4"),
        st.one_of(_ip4, words()),
    )


def connections() -> st.SearchStrategy[Connection]:
    """``c=`` values: unicast IP4/IP6, IP4 multicast with TTL/count, IP6 with count."""
    small = st.integers(min_value=0, max_value=255)
    return st.one_of(
        st.builds(Connection, st.just("IN"), st.just("IP4"), _ip4),
        st.builds(Connection, st.just("IN"), st.just("IP6"), _ip6),
        st.builds(Connection, st.just("IN"), st.just("IP4"), _ip4, small, st.none() | small),
        st.builds(Connection, st.just("IN"), st.just("IP6"), _ip6, st.none(), st.none() | small),
    )


def rtpmaps() -> st.SearchStrategy[RtpMap]:
    """Valid ``a=rtpmap`` values (payload type, encoding name, clock rate, channels)."""
    return st.builds(
        RtpMap,
        st.integers(min_value=0, max_value=127),
        words(max_size=10).filter(lambda w: "/" not in w),
        st.sampled_from([8000, 16000, 48000, 90000]),
        st.none() | st.integers(min_value=1, max_value=8),
    )


def cryptos() -> st.SearchStrategy[Crypto]:
    """RFC 4568 crypto values with inline keys, lifetimes and MKIs."""
    key = st.builds(
        CryptoKey,
        st.text(_B64, min_size=40, max_size=40),
        st.none() | st.sampled_from(["2^20", "2^31", "1048576"]),
        st.none() | st.integers(min_value=0, max_value=255),
        st.just(None),
    ).map(lambda k: k if k.mki is None else CryptoKey(k.key_salt, k.lifetime, k.mki, 4))
    return st.builds(
        Crypto,
        st.integers(min_value=0, max_value=999),
        st.sampled_from(["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AES_256_CM"]),
        st.lists(key, min_size=1, max_size=2).map(tuple),
        st.lists(st.sampled_from(["UNENCRYPTED_SRTP", "KDR=1"]), max_size=2).map(tuple),
    )


def attributes() -> st.SearchStrategy[Attribute]:
    """Any attribute, including typed ones (rtpmap, fmtp, ptime, rtcp, crypto, direction)."""
    name = st.text(_TOKEN_ALPHABET, min_size=1, max_size=12)
    return st.one_of(
        st.builds(Attribute, name, st.none() | text_values()),
        rtpmaps().map(RtpMap.as_attribute),
        cryptos().map(Crypto.as_attribute),
        st.builds(Fmtp, st.integers(0, 127).map(str), words()).map(
            lambda f: Attribute("fmtp", str(f))
        ),
        st.sampled_from(DIRECTIONS).map(Attribute),
        st.integers(10, 120).map(lambda p: Attribute("ptime", str(p))),
        st.builds(Rtcp, _port).map(lambda r: Attribute("rtcp", str(r))),
        st.just(Attribute("rtcp-mux")),
    )


_bandwidths = st.builds(Bandwidth, st.sampled_from(["AS", "CT", "TIAS"]), _uint)
_unknown = st.lists(st.tuples(st.sampled_from("xyw"), text_values()), max_size=2).map(tuple)


def media_descriptions() -> st.SearchStrategy[MediaDescription]:
    """``m=`` sections with their lines."""
    return st.builds(
        MediaDescription,
        st.sampled_from(["audio", "video", "application", "text"]),
        _port,
        st.sampled_from(["RTP/AVP", "RTP/SAVP", "UDP/TLS/RTP/SAVPF", "udp"]),
        st.lists(words(max_size=4), max_size=6).map(tuple),
        port_count=st.none() | st.integers(1, 4),
        information=st.none() | text_values(),
        connections=st.lists(connections(), max_size=2).map(tuple),
        bandwidths=st.lists(_bandwidths, max_size=2).map(tuple),
        key=st.none() | text_values(),
        attributes=st.lists(attributes(), max_size=8).map(tuple),
        unknown_lines=_unknown,
    ).filter(_ports_fit)


def _ports_fit(media: MediaDescription) -> bool:
    """RFC 8866 §5.14: a ``<port>/<count>`` range ends by 65535 (the parser checks it)."""
    return media.port_count is None or media.port + 2 * media.port_count - 1 <= 65535


def session_descriptions() -> st.SearchStrategy[SessionDescription]:
    """Whole session descriptions."""
    timing = st.builds(
        Timing, _uint, _uint, st.lists(text_values(min_size=1), max_size=2).map(tuple)
    )
    zone = st.builds(TimeZone, _uint, st.sampled_from(["-1h", "0", "25h", "-3600"]))
    return st.builds(
        SessionDescription,
        origins(),
        text_values(),
        st.lists(media_descriptions(), max_size=3).map(tuple),
        version=st.just(0),
        information=st.none() | text_values(),
        uri=st.none() | text_values(),
        emails=st.lists(text_values(), max_size=2).map(tuple),
        phones=st.lists(text_values(), max_size=2).map(tuple),
        connection=st.none() | connections(),
        bandwidths=st.lists(_bandwidths, max_size=2).map(tuple),
        times=st.lists(timing, min_size=1, max_size=2).map(tuple),
        time_zones=st.lists(zone, max_size=2).map(tuple),
        key=st.none() | text_values(),
        attributes=st.lists(attributes(), max_size=6).map(tuple),
        unknown_lines=_unknown,
    )
