"""The layer's side of RFC 3263 failover and 3xx redirects, fed responses directly."""

from __future__ import annotations

import random

import attrs
from hypothesis import given
from hypothesis import strategies as st

from rvoip_dialog_core import (
    CallRedirected,
    DialogConfig,
    DialogConfirmed,
    DialogEarly,
    DialogLayer,
    DialogTerminated,
    InviteFailed,
    LegId,
    ResponseForRequest,
    SendRequest,
    TerminationReason,
)
from rvoip_sip_core import Request, make_response

CONFIG = DialogConfig(contact="sip:alice@127.0.0.1:5060", via_host="127.0.0.1", via_port=5060)


def start(config: DialogConfig = CONFIG) -> tuple[DialogLayer, LegId, Request]:
    dl = DialogLayer(config, rng=random.Random(1))
    leg = dl.invite("sip:bob@example.test", from_="sip:alice@127.0.0.1", body=b"v=0\r\n", now=0.0)
    (action,) = dl.take_actions()
    assert isinstance(action, SendRequest)
    return dl, leg, action.request


def sent(dl: DialogLayer) -> list[Request]:
    return [a.request for a in dl.take_actions() if isinstance(a, SendRequest)]


def test_fail_over_gives_the_same_request_with_a_new_branch() -> None:
    """RFC 3263 §4.3: identical request, new branch; the layer now matches the new one."""
    dl = DialogLayer(CONFIG, rng=random.Random(1))
    ref = dl.send_request("OPTIONS", "sip:example.test", from_="sip:a@h", now=0.0)
    (old,) = sent(dl)
    new = dl.fail_over(old, 1.0)
    assert new is not None
    assert new.top_via.branch != old.top_via.branch
    assert (new.call_id, new.cseq, str(new.uri)) == (old.call_id, old.cseq, str(old.uri))
    assert new.from_.tag == old.from_.tag
    assert sent(dl) == []  # the driver sends it, to the next target
    dl.on_response(make_response(old, 200), 1.1)  # the old transaction is forgotten
    assert dl.take_events() == []
    dl.on_response(make_response(new, 200), 1.2)
    (event,) = dl.take_events()
    assert isinstance(event, ResponseForRequest)
    assert event.ref == ref
    assert event.response.status == 200


def test_invite_fails_over_until_it_has_an_early_dialog() -> None:
    dl, _, invite = start()
    moved = dl.fail_over(invite, 1.0)
    assert moved is not None
    dl.on_response(make_response(moved, 180, to_tag="b1", headers=[("Contact", "<sip:b@h>")]), 2)
    dl.take_events()
    assert dl.fail_over(moved, 3.0) is None  # RFC 3263 §4.3 retry would orphan the dialog
    dl.on_response(make_response(moved, 200, to_tag="b1", headers=[("Contact", "<sip:b@h>")]), 4)
    assert any(isinstance(e, DialogConfirmed) for e in dl.take_events())


def test_no_fail_over_once_cancelled_nor_in_a_dialog() -> None:
    dl, leg, invite = start()
    dl.cancel(leg, now=0.5)
    assert dl.fail_over(invite, 1.0) is None
    dl, leg, invite = start()
    ok = make_response(invite, 200, to_tag="b1", headers=[("Contact", "<sip:b@127.0.0.1>")])
    dl.on_response(ok, 1.0)
    (confirmed,) = [e for e in dl.take_events() if isinstance(e, DialogConfirmed)]
    dl.bye(confirmed.dialog_id, now=2.0)
    (bye,) = [r for r in sent(dl) if r.method == "BYE"]
    assert dl.fail_over(bye, 3.0) is None


def test_302_contacts_tried_in_q_order_with_cseq_up() -> None:
    dl, _, invite = start()
    contacts = ("<sip:c@127.0.0.1:1>;q=0.1", "<sip:d@127.0.0.1:2>", "<tel:+1>")
    headers = [("Contact", contact) for contact in contacts]
    dl.on_response(make_response(invite, 302, to_tag="r", headers=headers), 1.0)
    (moved,) = dl.take_events()
    assert isinstance(moved, CallRedirected)
    assert str(moved.target) == "sip:d@127.0.0.1:2"  # no q counts as 1.0
    (second,) = sent(dl)
    assert str(second.uri) == "sip:d@127.0.0.1:2"
    assert second.cseq.seq == invite.cseq.seq + 1
    assert (second.call_id, second.from_.tag) == (invite.call_id, invite.from_.tag)
    assert second.headers.get("To") == invite.headers.get("To")
    dl.on_response(make_response(second, 603, to_tag="d"), 2.0)  # 6xx: no other target
    (failed,) = dl.take_events()
    assert isinstance(failed, InviteFailed)
    assert failed.response.status == 603


def test_302_after_180_ends_the_early_dialog_and_follows_the_redirect() -> None:
    """Forward on no answer: the phone rings (180, early dialog), then answers 302.

    RFC 3261 §12.3: the 302 ends the early dialog; §8.1.3.4: the INVITE goes on to the
    Contact. The early dialog is reported ended (REDIRECTED, 302) before the redirect,
    and the new target's 200 confirms a dialog of its own.
    """
    dl, leg, invite = start()
    bob = [("Contact", "<sip:bob@127.0.0.1:5070>")]
    dl.on_response(make_response(invite, 180, to_tag="b1", headers=bob), 1.0)
    (early,) = [e for e in dl.take_events() if isinstance(e, DialogEarly)]  # + InviteProgress
    carol = [("Contact", "<sip:carol@127.0.0.1:5080>")]
    dl.on_response(make_response(invite, 302, to_tag="b1", headers=carol), 20.0)
    ended, moved = dl.take_events()
    assert isinstance(ended, DialogTerminated), ended
    assert (ended.dialog_id, ended.reason, ended.status) == (
        early.dialog_id,
        TerminationReason.REDIRECTED,
        302,
    )
    assert isinstance(moved, CallRedirected)
    assert (moved.leg, str(moved.target)) == (leg, "sip:carol@127.0.0.1:5080")
    (second,) = sent(dl)
    assert str(second.uri) == "sip:carol@127.0.0.1:5080"
    assert second.cseq.seq == invite.cseq.seq + 1
    assert not dl.dialogs  # nothing of bob's dialog is left
    ok = make_response(second, 200, to_tag="c1", headers=carol)
    dl.on_response(ok, 21.0)
    (confirmed,) = [e for e in dl.take_events() if isinstance(e, DialogConfirmed)]
    assert confirmed.dialog_id.remote_tag == "c1"
    assert confirmed.dialog_id.leg == leg


pool = st.sampled_from([f"sip:u{i}@127.0.0.1:{5000 + i}" for i in range(6)])


@given(
    st.lists(st.lists(pool, min_size=0, max_size=3), min_size=1, max_size=10),
    st.integers(0, 4),
)
def test_redirect_chains_are_bounded_and_never_repeat_a_target(
    chain: list[list[str]], bound: int
) -> None:
    """Whatever the 3xx say, no URI is tried twice and at most ``max_redirects`` follow."""
    dl, _, invite = start(attrs.evolve(CONFIG, max_redirects=bound))
    tried = [str(invite.uri)]
    current = invite
    for contacts in chain:
        headers = [("Contact", f"<{uri}>") for uri in contacts]
        dl.on_response(make_response(current, 302, to_tag="r", headers=headers), 1.0)
        events = dl.take_events()
        out = sent(dl)
        if not out:
            # Nothing left to try: the call failed with the 3xx, exactly once.
            assert [type(e) for e in events] == [InviteFailed]
            break
        (current,) = out
        tried.append(str(current.uri))
        assert [type(e) for e in events] == [CallRedirected]
    assert len(tried) == len(set(tried))
    assert len(tried) <= 1 + bound
