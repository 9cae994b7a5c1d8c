"""Tests of SessionManagerBuilder and the address rules of ARCHITECTURE §4."""

from __future__ import annotations

import pytest

from rvoip_session_core import AutoAnswerHandler, ConfigurationError, QueueHandler
from rvoip_session_core._config import SessionManagerBuilder, is_ip_literal, split_uri_hostport


def test_ip_literal_local_address_is_bound_and_its_port_used() -> None:
    config = SessionManagerBuilder().with_local_address("sip:alice@127.0.0.1:5070").config()
    assert config.bind_host == "127.0.0.1"
    assert config.sip_port == 5070
    assert config.user == "alice"
    assert config.advertised_host == "127.0.0.1"


def test_explicit_sip_port_wins_over_the_uri_port() -> None:
    config = (
        SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address("sip:alice@127.0.0.1:5070")
        .config()
    )
    assert config.sip_port == 0


def test_hostname_local_address_binds_the_bind_addr_and_advertises_the_bound_address() -> None:
    config = (
        SessionManagerBuilder()
        .with_local_address("sip:bob@pbx.example.com")
        .with_local_bind_addr("127.0.0.1:5080")
        .config()
    )
    assert config.bind_host == "127.0.0.1"
    assert config.sip_port == 5080
    assert config.public_host is None  # Via/Contact/SDP carry the bound address
    assert config.advertised_host == "127.0.0.1"


def test_ipv6_local_address() -> None:
    config = SessionManagerBuilder().with_local_address("sip:carol@[::1]:5090").config()
    assert config.bind_host == "::1"
    assert config.sip_port == 5090


def test_defaults() -> None:
    builder = SessionManagerBuilder()
    config = builder.config()
    assert (config.bind_host, config.sip_port, config.transport) == ("127.0.0.1", 5060, "UDP")
    assert config.preferred_codecs == ("PCMU", "PCMA")
    assert isinstance(builder.handler, AutoAnswerHandler)


def test_all_settings_reach_the_config() -> None:
    queue = QueueHandler(3)
    builder = (
        SessionManagerBuilder()
        .with_handler(queue)
        .with_media_ports(20000, 20100)
        .with_transport("tcp")
        .with_preferred_codecs(["pcma", "PCMU", "PCMA"])
        .with_dtmf_payload_type(96)
        .with_incoming_call_timeout(2.5)
        .with_quality_interval(1)
        .with_sip_timers(0.05, 0.4)
        .with_user_agent("test-ua")
        .with_rng_seed(7)
        .with_public_address("203.0.113.5")
    )
    config = builder.config()
    assert builder.handler is queue
    assert config.media_ports == (20000, 20100)
    assert config.transport == "TCP"
    assert config.preferred_codecs == ("PCMA", "PCMU")
    assert config.dtmf_payload_type == 96
    assert config.incoming_call_timeout == 2.5
    assert config.quality_interval == 1.0
    assert (config.t1, config.t2) == (0.05, 0.4)
    assert config.user_agent == "test-ua"
    assert config.rng_seed == 7
    assert config.advertised_host == "203.0.113.5"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda b: b.with_sip_port(70000), "out of range"),
        (lambda b: b.with_local_address("http://x"), "not a SIP URI"),
        (lambda b: b.with_local_address("sip:a@h:99999"), "bad port"),
        (lambda b: b.with_local_bind_addr("localhost"), "IP literal"),
        (lambda b: b.with_media_ports(30000, 30000), "media port range"),
        (lambda b: b.with_transport("sctp"), "unsupported transport"),
        (lambda b: b.with_preferred_codecs(["speex"]), "unsupported codec"),
        (lambda b: b.with_dtmf_payload_type(8), "dynamic payload"),
        (lambda b: b.with_incoming_call_timeout(0), "positive"),
        (lambda b: b.with_sip_timers(2.0, 1.0), "T1"),
        (lambda b: b.with_handler(object()), "not a CallHandler"),
    ],
)
def test_bad_settings_raise_configuration_error(call: object, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        call(SessionManagerBuilder())  # type: ignore[operator]


def test_uri_helpers() -> None:
    assert split_uri_hostport("<sip:a@h.com:5061;transport=tcp>") == ("a", "h.com", 5061)
    assert split_uri_hostport("sips:h") == (None, "h", None)
    assert is_ip_literal("[::1]")
    assert is_ip_literal("10.0.0.1")
    assert not is_ip_literal("example.com")
