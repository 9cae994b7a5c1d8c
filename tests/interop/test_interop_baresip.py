"""baresip, a real softphone, against rvoip over TLS: ``sip:…;transport=tls`` and ``sips:``,
both directions (issue 16), with hold and DTMF in a call.

Skipped, saying why, when ``baresip`` is not installed (Debian: ``apt-get install
baresip-core``; ``tools/dev.py setup`` installs it as root) or ``openssl`` cannot make the
test certificate. Everything runs on 127.0.0.1 with ports chosen free at run time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest
from interop_baresip import HOST, Baresip, find_baresip
from interop_calls import Recorder, only_active_call

from rvoip_session_core import CallState, SessionId, SessionManagerBuilder
from rvoip_session_core.testing import SipTrace, released, wait_until
from rvoip_transaction_core.testing import self_signed_certificate

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and its key), the CA of both sides."""
    files = self_signed_certificate(tmp_path_factory.mktemp("baresip-tls"))
    if files is None:
        pytest.skip("openssl CLI not found: cannot generate a test certificate")
    return files


@pytest.fixture
async def phone(tmp_path: Path, tls_files: tuple[Path, Path]) -> AsyncIterator[Baresip]:
    """A running baresip (auto-answer) with the test certificate."""
    exe = find_baresip()
    if exe is None:
        pytest.skip("baresip not found on PATH (Debian: apt-get install baresip-core)")
    cert, key = tls_files
    async with Baresip(exe, tmp_path, cert, key) as running:
        yield running


def tls_builder(
    builder: Callable[..., SessionManagerBuilder],
    handler: Recorder,
    files: tuple[Path, Path],
    user: str = "rvoip",
) -> SessionManagerBuilder:
    cert, key = files
    return builder(handler, user).with_tls(str(cert), str(key), cafile=str(cert))


@pytest.mark.parametrize("form", ["tls", "sips"])
async def test_baresip_calls_rvoip_over_tls(
    phone: Baresip,
    builder: Callable[..., SessionManagerBuilder],
    tls_files: tuple[Path, Path],
    form: str,
) -> None:
    """Issue 16: baresip dialled ``sip:judge@127.0.0.1:PORT;transport=tls``, our 200 OK
    carried ``Contact: <sips:...>`` and baresip closed the session at once ("Function not
    implemented"). Now the Contact is ``sip:...;transport=tls`` for that and ``sips:`` for
    a ``sips:`` call, the call stays up, and our BYE reaches baresip over TLS."""
    if form == "sips" and phone.version < (1, 1):
        pytest.skip(
            f"baresip {phone.version_text} cannot dial sips: URIs (its dial command turns "
            "'sips:x' into 'sip:sips:x', '<sips:x>' into 'sip:<sips:x>')"
        )
    handler = Recorder()
    trace = SipTrace()
    async with await tls_builder(builder, handler, tls_files).build() as rvoip:
        trace.attach(rvoip, "rvoip")
        tls = rvoip.endpoint.local("TLS")
        target = (
            f"sips:judge@{HOST}:{tls.port}"
            if form == "sips"
            else f"sip:judge@{HOST}:{tls.port};transport=tls"
        )
        await phone.command("dial", target)
        await phone.event("CALL_ESTABLISHED")
        call_id = await only_active_call(rvoip)
        ok = next(r for r in trace.responses(200) if r.cseq.method == "INVITE")
        contact = str(ok.contacts[0].uri)
        if form == "sips":
            assert contact == f"sips:rvoip@{HOST}:{tls.port}"
        else:
            assert contact == f"sip:rvoip@{HOST}:{tls.port};transport=tls"
        await anyio.sleep(1.0)  # baresip used to drop the call right after the 200 OK
        assert not phone.seen("CALL_CLOSED"), phone.output()
        assert (await rvoip.get_session(call_id)).state is CallState.Active
        # baresip holds and resumes (re-INVITEs to our Contact) and sends DTMF.
        await phone.command("hold")
        await phone.command("resume")
        assert await wait_until(
            lambda: len([r for r in trace.responses(200) if r.cseq.method == "INVITE"]) >= 3,
            timeout=10,
        ), phone.output()
        for answer in trace.responses(200):
            if answer.cseq.method == "INVITE":
                assert str(answer.contacts[0].uri) == contact
        await phone.command("sndcode", "5")
        digits = handler.dtmf
        assert await wait_until(lambda: "5" in digits.get(SessionId(call_id), []), timeout=5), (
            phone.output()
        )
        await rvoip.terminate_session(call_id)
        await phone.event("CALL_CLOSED")
        assert await wait_until(lambda: released(rvoip))
    bye = trace.requests("BYE")[0]
    assert bye.top_via.transport == "TLS"
    assert str(bye.uri).startswith("sips:" if form == "sips" else "sip:")


@pytest.mark.parametrize("form", ["tls", "sips"])
async def test_rvoip_calls_baresip_over_tls_with_hold_and_dtmf(
    phone: Baresip,
    builder: Callable[..., SessionManagerBuilder],
    tls_files: tuple[Path, Path],
    form: str,
) -> None:
    """rvoip dials baresip's TLS port (``sip:…;transport=tls`` and ``sips:``), verifies its
    certificate against the test CA, holds and resumes the call, sends DTMF and hangs up:
    every request over TLS, Contacts in the scheme of the request (RFC 5630)."""
    handler = Recorder()
    trace = SipTrace()
    # rvoip without a certificate of its own: a TLS client only (issue 16).
    cert, _key = tls_files
    client = builder(handler, "alice").with_transport("tls").with_tls(cafile=str(cert))
    async with await client.build() as rvoip:
        trace.attach(rvoip, "rvoip")
        with anyio.fail_after(30):
            call = await rvoip.create_outgoing_call(f"sip:alice@{HOST}", phone.uri(form))
            await rvoip.wait_for_answer(call.id, 10)
            await phone.event("CALL_ESTABLISHED")
            await rvoip.hold_session(call.id)
            assert (await rvoip.get_session(call.id)).state is CallState.OnHold
            await rvoip.resume_session(call.id)
            assert (await rvoip.get_session(call.id)).state is CallState.Active
            await rvoip.send_dtmf(call.id, "12#", method="info")
            await anyio.sleep(0.5)
            assert not phone.seen("CALL_CLOSED"), phone.output()
            await rvoip.terminate_session(call.id)
            await phone.event("CALL_CLOSED")
            assert await wait_until(lambda: released(rvoip))
    invites = trace.requests("INVITE")
    assert len(invites) == 3  # the call, hold, resume
    for request in (*invites, *trace.requests("BYE")):
        assert request.top_via.transport == "TLS"
        scheme = str(request.contacts[0].uri).split(":")[0] if request.contacts else None
        assert scheme in (None, "sips" if form == "sips" else "sip")


async def test_baresip_hangs_up_a_call_rvoip_placed_over_tls(
    phone: Baresip,
    builder: Callable[..., SessionManagerBuilder],
    tls_files: tuple[Path, Path],
) -> None:
    """baresip's BYE goes to our Contact, ``sip:alice@127.0.0.1:<TLS port>;transport=tls``:
    with a certificate rvoip listens there and the call ends cleanly. (A TLS *client*
    without a certificate has no listener; baresip 1.0 opens a new connection to the
    Contact instead of reusing ours, so its BYE cannot reach such an rvoip, see
    docs/tls-and-sips.md. baresip 1.0 sends no BYE to a sips: Contact either.)"""
    handler = Recorder()
    rvoip_builder = tls_builder(builder, handler, tls_files, "alice").with_transport("tls")
    async with await rvoip_builder.build() as rvoip:
        with anyio.fail_after(30):
            call = await rvoip.create_outgoing_call(f"sip:alice@{HOST}", phone.uri("tls"))
            await rvoip.wait_for_answer(call.id, 10)
            await phone.event("CALL_ESTABLISHED")
            await phone.command("hangup")
            await phone.event("CALL_CLOSED")
            assert await wait_until(lambda: released(rvoip), timeout=10), phone.output()
        assert [reason for _call, reason in handler.ended] == ["remote hangup"]
