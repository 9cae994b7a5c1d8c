"""Property: whatever ``received``/``rport`` a registrar writes, our Contact stays sane.

The top Via of a REGISTER response is the registrar's text (a hostile one, or a broken
one): learning from it (RFC 3581 §4) must never raise and never turn our Contact into
something that is not an IP address and a port in 1..65535.
"""

from __future__ import annotations

from typing import Any

import anyio
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rvoip_dialog_core import DialogConfig
from rvoip_session_core import Account
from rvoip_session_core._driver import with_contact_address
from rvoip_session_core._events import RegistrationState, RegistrationStatus
from rvoip_session_core._registration import Registrations, _Binding
from rvoip_session_core._registry import CallRegistry
from rvoip_session_core._settings import is_ip_literal, split_uri_hostport
from rvoip_sip_core import Response, SipParseError, parse_message

CONTACT = "sip:alice@192.168.1.20:5060"


class StubEndpoint:
    """The two endpoint calls ``_learn`` makes."""

    def __init__(self) -> None:
        self.config = DialogConfig(contact=CONTACT, via_host="192.168.1.20", via_port=5060)

    def set_contact_address(self, transport: str, host: str, port: int) -> None:
        self.config = with_contact_address(self.config, transport, host, port)


def response_with(via_params: str) -> Response | None:
    raw = (
        "SIP/2.0 200 OK\r\n"
        f"Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bKp{via_params}\r\n"
        "From: <sip:alice@pbx>;tag=a\r\nTo: <sip:alice@pbx>;tag=r\r\n"
        "Call-ID: c\r\nCSeq: 2 REGISTER\r\nContent-Length: 0\r\n\r\n"
    )
    try:
        message = parse_message(raw.encode("utf-8", "surrogatepass"))
        return message if isinstance(message, Response) and message.top_via else None
    except (SipParseError, UnicodeEncodeError):
        return None


def learn(response: Response) -> tuple[bool, StubEndpoint]:
    endpoint = StubEndpoint()
    registrations = Registrations(CallRegistry("p"), lambda event: None, 0.5)
    stub: Any = endpoint
    registrations.attach(stub, lambda *a: None, lambda: "cid", lambda: 0.0)
    account = Account("sip:pbx", "alice", "x")

    async def run() -> bool:
        status = RegistrationStatus(account.aor, account.registrar, RegistrationState.Registered)
        binding = _Binding(account, "cid", status)
        return registrations._learn(binding, response)

    return anyio.run(run), endpoint


PARAM_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00"),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@example(received="203.0.113.7", rport="61234")  # a real NAT: rewritten
@example(received="192.168.1.20", rport="5060")  # no NAT: left alone
@example(received="pbx.example.com", rport="5060")  # not an address: left alone
@example(received=None, rport="0")  # port 0: left alone
@given(
    received=st.one_of(st.none(), PARAM_TEXT, st.ip_addresses().map(str)),
    rport=st.one_of(st.none(), st.just(""), PARAM_TEXT, st.integers(-5, 99999).map(str)),
)
def test_learning_never_raises_and_never_makes_a_bad_contact(
    received: str | None, rport: str | None
) -> None:
    """A registrar's ``received``/``rport``, garbage or not, leaves a usable Contact."""
    params = ""
    if received is not None:
        params += f";received={received}"
    if rport is not None:
        params += ";rport" if rport == "" else f";rport={rport}"
    response = response_with(params)
    if response is None:
        return  # not a message sip-core accepts: it never reaches the registration
    changed, endpoint = learn(response)
    _, host, port = split_uri_hostport(endpoint.config.contact)
    assert host is not None
    assert is_ip_literal(host)
    assert port is not None
    assert 0 < port < 65536
    assert changed == (endpoint.config.contact != CONTACT)
    if received == "203.0.113.7" and rport == "61234":
        assert endpoint.config.contact == "sip:alice@203.0.113.7:61234"
