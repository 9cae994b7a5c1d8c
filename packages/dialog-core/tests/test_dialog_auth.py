"""Digest authentication of our requests: a 401/407 is answered once, by realm (RFC 3261 §22)."""

from __future__ import annotations

import random

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rvoip_dialog_core import (
    AuthenticationFailed,
    Credentials,
    DialogConfig,
    DialogConfirmed,
    DialogId,
    DialogLayer,
    IncomingInvite,
    InviteFailed,
    LegId,
    RequestReceived,
    ResponseForRequest,
    SendRequest,
)
from rvoip_dialog_core.testing import Agent, VirtualNetwork
from rvoip_sip_core import (
    AuthCredentials,
    DigestServer,
    Request,
    Response,
    make_response,
)

BOB = "sip:bob@127.0.0.1:5070"
PASSWORD = "s3cret"
BASE = DialogConfig(contact="sip:alice@127.0.0.1:5060", via_host="127.0.0.1", via_port=5060)


def config(*creds: Credentials, **more: object) -> DialogConfig:
    return attrs.evolve(BASE, credentials=creds, **more)  # type: ignore[arg-type]


def sent(dl: DialogLayer) -> Request:
    (action,) = [a for a in dl.take_actions() if isinstance(a, SendRequest)]
    return action.request


def challenge(
    request: Request,
    server: DigestServer,
    *,
    status: int = 401,
    stale: bool = False,
    now: float = 0.0,
) -> Response:
    headers = [
        ("Proxy-Authenticate" if status == 407 else "WWW-Authenticate", str(c))
        for c in server.challenge(now, stale=stale, proxy=status == 407)
    ]
    return make_response(request, status, to_tag="srv", headers=headers)


def credentials_of(request: Request, status: int = 401) -> list[AuthCredentials]:
    name = "Proxy-Authorization" if status == 407 else "Authorization"
    return [AuthCredentials.parse(v) for v in request.headers.get_all(name)]


def verify(server: DigestServer, request: Request, status: int = 401, now: float = 0.0) -> bool:
    (creds,) = credentials_of(request, status)
    verdict = server.verify(
        creds, method=request.method, now=now, password=PASSWORD, body=request.body
    )
    return verdict.ok


def invite(dl: DialogLayer) -> tuple[LegId, Request]:
    leg = dl.invite(BOB, from_="sip:alice@127.0.0.1", body=b"v=0\r\n", now=0.0)
    return leg, sent(dl)


# --- initial INVITE --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 407])
def test_challenged_invite_is_retried_once_with_credentials(status: int) -> None:
    dl = DialogLayer(config(Credentials("alice", PASSWORD)), rng=random.Random(1))
    leg, first = invite(dl)
    server = DigestServer("pbx", rng=random.Random(2), algorithms=("SHA-256", "MD5"))
    dl.on_response(challenge(first, server, status=status), 0.1)
    retry = sent(dl)
    # RFC 3261 §22.2: same Call-ID, From tag and To; CSeq + 1; a new branch.
    assert retry.method == "INVITE"
    assert retry.call_id == first.call_id
    assert retry.from_.tag == first.from_.tag
    assert retry.headers.get("To") == first.headers.get("To")
    assert retry.cseq.seq == first.cseq.seq + 1
    assert retry.top_via.branch != first.top_via.branch
    assert retry.body == first.body
    assert verify(server, retry, status)
    assert not dl.take_events()  # nothing failed
    dl.on_response(make_response(retry, 200, to_tag="b", headers=[("Contact", f"<{BOB}>")]), 0.2)
    (confirmed,) = [e for e in dl.take_events() if isinstance(e, DialogConfirmed)]
    assert confirmed.dialog_id.leg == leg
    assert dl.stats["auth_retries"] == 1


def test_strongest_offered_algorithm_is_answered() -> None:
    """RFC 8760 §2.4: of a realm's challenges we answer the one we prefer most."""
    dl = DialogLayer(config(Credentials("alice", PASSWORD)), rng=random.Random(1))
    _, first = invite(dl)
    server = DigestServer("pbx", algorithms=("MD5", "SHA-256", "SHA-512-256"))
    dl.on_response(challenge(first, server), 0.1)
    retry = sent(dl)
    (creds,) = credentials_of(retry)
    assert creds.algorithm == "SHA-512-256"
    assert verify(server, retry)


def test_md5_refused_when_not_allowed() -> None:
    cfg = config(Credentials("alice", PASSWORD), auth_algorithms=("SHA-256",))
    dl = DialogLayer(cfg, rng=random.Random(1))
    leg, first = invite(dl)
    dl.on_response(challenge(first, DigestServer("pbx")), 0.1)
    assert not dl.take_actions()
    failed, ended = dl.take_events()
    assert isinstance(failed, AuthenticationFailed)
    assert failed.realm == "pbx"
    assert failed.status == 401
    assert failed.leg == leg
    assert isinstance(ended, InviteFailed)
    assert ended.response.status == 401


def test_wrong_password_fails_on_second_challenge() -> None:
    dl = DialogLayer(config(Credentials("alice", "wrong")), rng=random.Random(1))
    leg, first = invite(dl)
    server = DigestServer("pbx")
    dl.on_response(challenge(first, server), 0.1)
    retry = sent(dl)
    assert not verify(server, retry)
    dl.on_response(challenge(retry, server), 0.2)
    assert not dl.take_actions()
    failed, ended = dl.take_events()
    assert isinstance(failed, AuthenticationFailed)
    assert failed.method == "INVITE"
    assert failed.status == 401
    assert failed.realm == "pbx"
    assert "rejected" in failed.reason
    assert "'pbx'" in failed.reason
    assert "401" in failed.reason
    assert isinstance(ended, InviteFailed)
    assert ended.leg == leg
    assert ended.response.status == 401


def test_no_credentials_reports_the_realm() -> None:
    dl = DialogLayer(BASE, rng=random.Random(1))
    _, first = invite(dl)
    dl.on_response(challenge(first, DigestServer("pbx"), status=407), 0.1)
    failed, ended = dl.take_events()
    assert isinstance(failed, AuthenticationFailed)
    assert failed.status == 407
    assert failed.realm == "pbx"
    assert "no credentials" in failed.reason
    assert isinstance(ended, InviteFailed)
    assert ended.response.status == 407


def test_stale_nonce_is_answered_again_within_the_bound() -> None:
    """RFC 7616 §3.3: stale=true means the password was right: retry with the new nonce."""
    dl = DialogLayer(config(Credentials("alice", PASSWORD)), rng=random.Random(1))
    _, first = invite(dl)
    server = DigestServer("pbx")
    dl.on_response(challenge(first, server), 0.1)
    second = sent(dl)
    dl.on_response(challenge(second, server, stale=True), 0.2)
    third = sent(dl)
    assert third.cseq.seq == first.cseq.seq + 2
    assert verify(server, third)
    # auth_retries (2) bounds even stale challenges: a third challenge fails the call.
    dl.on_response(challenge(third, server, stale=True), 0.3)
    failed, ended = dl.take_events()
    assert isinstance(failed, AuthenticationFailed)
    assert isinstance(ended, InviteFailed)


def test_credentials_chosen_by_realm() -> None:
    creds = (Credentials("any", "nope"), Credentials("alice", PASSWORD, realm="pbx"))
    dl = DialogLayer(config(*creds), rng=random.Random(1))
    _, first = invite(dl)
    server = DigestServer("pbx")
    dl.on_response(challenge(first, server), 0.1)
    retry = sent(dl)
    (c,) = credentials_of(retry)
    assert c.username == "alice"
    assert verify(server, retry)


def test_proxy_credentials_kept_when_the_callee_challenges_next() -> None:
    """A 407 from a proxy, then a 401 from the callee: the last retry carries both."""
    creds = (Credentials("alice", PASSWORD, realm="proxy"), Credentials("alice", PASSWORD))
    dl = DialogLayer(config(*creds), rng=random.Random(1))
    _, first = invite(dl)
    proxy, callee = DigestServer("proxy"), DigestServer("callee")
    dl.on_response(challenge(first, proxy, status=407), 0.1)
    second = sent(dl)
    dl.on_response(challenge(second, callee, status=401), 0.2)
    third = sent(dl)
    assert verify(proxy, third, 407)
    assert verify(callee, third, 401)


def test_auth_int_covers_the_body() -> None:
    dl = DialogLayer(config(Credentials("alice", PASSWORD)), rng=random.Random(1))
    _, first = invite(dl)
    server = DigestServer("pbx", qop=("auth-int",))
    dl.on_response(challenge(first, server), 0.1)
    retry = sent(dl)
    (c,) = credentials_of(retry)
    assert c.qop == "auth-int"
    assert verify(server, retry)


def test_password_not_in_repr() -> None:
    cred = Credentials("alice", PASSWORD, realm="pbx")
    assert PASSWORD not in repr(cred)
    assert PASSWORD not in repr(config(cred))


# --- other requests --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["REGISTER", "OPTIONS", "MESSAGE", "SUBSCRIBE"])
def test_out_of_dialog_requests_are_retried(method: str) -> None:
    dl = DialogLayer(config(Credentials("alice", PASSWORD)), rng=random.Random(1))
    ref = dl.send_request(method, "sip:pbx.example", from_="sip:alice@pbx.example", now=0.0)
    first = sent(dl)
    server = DigestServer("pbx")
    dl.on_response(challenge(first, server), 0.1)
    retry = sent(dl)
    assert retry.method == method
    assert retry.call_id == first.call_id
    assert retry.cseq.seq == first.cseq.seq + 1
    assert retry.top_via.branch != first.top_via.branch
    assert verify(server, retry)
    assert not dl.take_events()
    dl.on_response(make_response(retry, 200, to_tag="x"), 0.2)
    (done,) = dl.take_events()
    assert isinstance(done, ResponseForRequest)
    assert done.ref == ref
    assert done.response.status == 200


def test_out_of_dialog_wrong_password_ends_with_the_challenge() -> None:
    dl = DialogLayer(config(Credentials("alice", "bad")), rng=random.Random(1))
    ref = dl.send_request("REGISTER", "sip:pbx.example", from_="sip:alice@pbx.example", now=0.0)
    server = DigestServer("pbx")
    dl.on_response(challenge(sent(dl), server), 0.1)
    dl.on_response(challenge(sent(dl), server), 0.2)
    failed, done = dl.take_events()
    assert isinstance(failed, AuthenticationFailed)
    assert failed.ref == ref
    assert failed.method == "REGISTER"
    assert failed.dialog_id is None
    assert isinstance(done, ResponseForRequest)
    assert done.ref == ref
    assert done.response.status == 401


def confirmed_dialog() -> tuple[DialogLayer, DialogId]:
    dl = DialogLayer(config(Credentials("alice", PASSWORD)), rng=random.Random(1))
    _, first = invite(dl)
    dl.on_response(make_response(first, 200, to_tag="b", headers=[("Contact", f"<{BOB}>")]), 0.1)
    (confirmed,) = [e for e in dl.take_events() if isinstance(e, DialogConfirmed)]
    dl.take_actions()  # the ACK
    return dl, confirmed.dialog_id


@pytest.mark.parametrize("method", ["BYE", "INVITE", "UPDATE", "REFER", "INFO"])
def test_in_dialog_requests_are_retried(method: str) -> None:
    dl, did = confirmed_dialog()
    headers = [("Refer-To", "<sip:carol@127.0.0.1>")] if method == "REFER" else []
    ref = dl.request(did, method, headers=headers, now=1.0)
    first = sent(dl)
    server = DigestServer("pbx")
    dl.on_response(challenge(first, server, status=407), 1.1)
    retry = sent(dl)
    assert retry.method == method
    assert retry.call_id == first.call_id
    assert retry.to.tag == first.to.tag
    assert retry.from_.tag == first.from_.tag
    assert retry.cseq.seq == first.cseq.seq + 1
    assert retry.top_via.branch != first.top_via.branch
    assert verify(server, retry, 407)
    dl.on_response(make_response(retry, 200), 1.2)
    done = [e for e in dl.take_events() if isinstance(e, ResponseForRequest)]
    assert [(d.ref, d.response.status) for d in done] == [(ref, 200)]
    if method != "BYE":
        # The dialog's CSeq moved on with the retry (RFC 3261 §12.2.1.1).
        dl.request(did, "INFO", now=1.3)
        assert sent(dl).cseq.seq == retry.cseq.seq + 1


@given(st.lists(st.sampled_from(["ok", "stale", "fresh"]), max_size=6))
@settings(max_examples=60, deadline=None)
def test_any_challenge_sequence_ends_in_bounded_retries(steps: list[str]) -> None:
    """Whatever a server answers, a request is sent at most 1 + auth_retries times and
    either succeeds or fails with AuthenticationFailed naming the status."""
    dl = DialogLayer(config(Credentials("alice", PASSWORD)), rng=random.Random(3))
    dl.send_request("OPTIONS", "sip:pbx.example", from_="sip:alice@pbx.example", now=0.0)
    request = sent(dl)
    server = DigestServer("pbx")
    sends = 1
    for step in steps:
        if step == "ok":
            dl.on_response(make_response(request, 200, to_tag="x"), 0.0)
            break
        dl.on_response(challenge(request, server, stale=step == "stale"), 0.0)
        out = [a for a in dl.take_actions() if isinstance(a, SendRequest)]
        if not out:
            failed = [e for e in dl.take_events() if isinstance(e, AuthenticationFailed)]
            assert failed
            assert failed[0].status == 401
            break
        (action,) = out
        request = action.request
        sends += 1
    assert sends <= 1 + BASE.auth_retries


# --- through the transaction layer, virtual time -----------------------------------------------


def test_challenging_callee_over_virtual_network() -> None:
    """Bob answers 401 to the first INVITE (the transaction layer ACKs it), checks the
    credentials of the second and accepts it."""
    net = VirtualNetwork()
    alice = net.add(
        "alice",
        5060,
        seed=1,
        configure=lambda c: attrs.evolve(c, credentials=(Credentials("alice", PASSWORD),)),
    )
    bob: Agent = net.add("bob", 5070, seed=2)
    server = DigestServer("bob.example", rng=random.Random(4))
    alice.dialog.invite(BOB, from_="sip:alice@127.0.0.1", body=b"v=0\r\n", now=net.now)
    net.pump()
    (first,) = bob.of_type(IncomingInvite)
    assert isinstance(first, IncomingInvite)
    headers = [("WWW-Authenticate", str(c)) for c in server.challenge(net.now)]
    bob.dialog.respond(first.ref, 401, headers=headers, now=net.now)
    net.pump()
    acks = [m for m in net.messages(method="ACK") if isinstance(m, Request)]
    assert len(acks) == 1
    assert acks[0].cseq.seq == first.request.cseq.seq
    _, second = bob.of_type(IncomingInvite)
    assert isinstance(second, IncomingInvite)
    assert verify(server, second.request, now=net.now)
    bob.dialog.respond(second.ref, 200, body=b"v=0\r\n", now=net.now)
    net.pump()
    assert alice.of_type(DialogConfirmed)
    assert not alice.of_type(InviteFailed)
    assert not alice.of_type(RequestReceived)


# --- outbound proxy ------------------------------------------------------------------------


def test_outbound_proxy_is_a_preloaded_route_for_requests_outside_dialogs() -> None:
    """RFC 3261 §8.1.2: the INVITE and REGISTER carry Route: <proxy;lr>; an explicit route
    wins; in the dialog the Record-Route route set applies, not the proxy."""
    cfg = attrs.evolve(BASE, outbound_proxy="sip:127.0.0.1:5080;lr")
    dl = DialogLayer(cfg, rng=random.Random(1))
    _, first = invite(dl)
    assert first.headers.get_all("Route") == ["<sip:127.0.0.1:5080;lr>"]
    assert str(first.uri) == BOB
    dl.send_request("REGISTER", "sip:pbx.example", from_="sip:alice@pbx.example", now=0.0)
    assert sent(dl).headers.get_all("Route") == ["<sip:127.0.0.1:5080;lr>"]
    dl.send_request(
        "OPTIONS",
        "sip:pbx.example",
        from_="sip:alice@pbx.example",
        route=["<sip:127.0.0.1:5090;lr>"],
        now=0.0,
    )
    assert sent(dl).headers.get_all("Route") == ["<sip:127.0.0.1:5090;lr>"]
    ok = make_response(
        first,
        200,
        to_tag="b",
        headers=[("Contact", f"<{BOB}>"), ("Record-Route", "<sip:127.0.0.1:5080;lr>")],
    )
    dl.on_response(ok, 0.1)
    (confirmed,) = [e for e in dl.take_events() if isinstance(e, DialogConfirmed)]
    dl.take_actions()
    dl.request(confirmed.dialog_id, "INFO", now=0.2)
    assert sent(dl).headers.get_all("Route") == ["<sip:127.0.0.1:5080;lr>"]


@pytest.mark.parametrize("status", [401, 422])
def test_cancel_after_a_retry_waits_for_the_new_transactions_provisional(status: int) -> None:
    """Regression (422; the same rule for 401): a 100 Trying to the first INVITE let a
    CANCEL asked for after the retry go at once, before the retried INVITE (a new
    transaction) had any provisional response (RFC 3261 §9.1: SHOULD NOT)."""
    dl = DialogLayer(config(Credentials("alice", PASSWORD)), rng=random.Random(1))
    leg, first = invite(dl)
    dl.on_response(make_response(first, 100), 0.05)
    if status == 401:
        dl.on_response(challenge(first, DigestServer("pbx")), 0.1)
    else:
        dl.on_response(make_response(first, 422, to_tag="s", headers=[("Min-SE", "3600")]), 0.1)
    retry = sent(dl)
    assert retry.cseq.seq == first.cseq.seq + 1
    dl.cancel(leg, now=0.2)
    assert dl.take_actions() == []  # waits for a provisional of the retry
    dl.on_response(make_response(retry, 100), 0.3)
    (cancel,) = [a.request for a in dl.take_actions() if isinstance(a, SendRequest)]
    assert cancel.method == "CANCEL"
    assert cancel.top_via.branch == retry.top_via.branch
