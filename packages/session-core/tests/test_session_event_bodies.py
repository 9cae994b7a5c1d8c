"""dialog-info (RFC 4235) and message-summary (RFC 3842) documents: round trips, hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rvoip_session_core import (
    DialogInfo,
    DialogInfoEntry,
    EventBodyError,
    MessageCounts,
    MessageSummary,
    blf_state,
    build_dialog_info,
    build_message_summary,
    parse_dialog_info,
    parse_message_summary,
)
from rvoip_session_core._event_bodies import DIALOG_STATES, MAX_DIALOGS, apply_dialog_info

_text = (
    st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters="<>&\"'"),
        min_size=1,
        max_size=20,
    )
    .map(str.strip)
    .filter(bool)
)

entries = st.builds(
    DialogInfoEntry,
    id=_text,
    state=st.sampled_from(DIALOG_STATES),
    direction=st.none() | st.sampled_from(["initiator", "recipient"]),
    call_id=st.none() | _text,
    local_tag=st.none() | _text,
    remote_tag=st.none() | _text,
    local_identity=st.none() | _text.map(lambda t: f"sip:{t}"),
    remote_identity=st.none() | _text.map(lambda t: f"sip:{t}"),
    event=st.none() | st.sampled_from(["cancelled", "rejected", "replaced"]),
)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(entries, max_size=5))
def test_dialog_info_round_trip(version: int, dialogs: list[DialogInfoEntry]) -> None:
    data = build_dialog_info("sip:bob@example.com", version, dialogs)
    info = parse_dialog_info(data)
    assert info == DialogInfo("sip:bob@example.com", version, "full", tuple(dialogs))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_dialog_info_arbitrary_bytes_raise_only_event_body_error(data: bytes) -> None:
    try:
        parse_dialog_info(data)
    except EventBodyError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_message_summary_arbitrary_bytes_raise_only_event_body_error(data: bytes) -> None:
    try:
        parse_message_summary(data)
    except EventBodyError:
        pass


counts = st.builds(
    MessageCounts,
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)
classes = st.sampled_from(
    ["voice-message", "fax-message", "pager-message", "multimedia-message", "text-message"]
)


@settings(max_examples=200, deadline=None)
@given(
    st.booleans(),
    st.none() | _text.map(lambda t: f"sip:{t}@vm"),
    st.lists(st.tuples(classes, counts), max_size=5, unique_by=lambda c: c[0]),
)
def test_message_summary_round_trip(
    waiting: bool, account: str | None, lines: list[tuple[str, MessageCounts]]
) -> None:
    summary = MessageSummary(waiting, account, tuple(lines))
    assert parse_message_summary(build_message_summary(summary)) == summary


def test_message_summary_rfc3842_example() -> None:
    """RFC 3842 §5.2's example, with the optional message headers after the blank line."""
    body = (
        b"Messages-Waiting: yes\r\n"
        b"Message-Account: sip:alice@vmail.example.com\r\n"
        b"Voice-Message: 2/8 (0/2)\r\n"
        b"\r\n"
        b"To: <alice@atlanta.example.com>\r\n"
        b"From: <bob@biloxi.example.com>\r\n"
    )
    summary = parse_message_summary(body)
    assert summary.waiting
    assert summary.account == "sip:alice@vmail.example.com"
    assert summary.voice == MessageCounts(2, 8, 0, 2)


@pytest.mark.parametrize(
    "body",
    [
        b"Voice-Message: 2/8\r\n",  # no Messages-Waiting
        b"Messages-Waiting: maybe\r\n",
        b"Messages-Waiting: yes\r\nVoice-Message: two/8\r\n",
        b"Messages-Waiting: yes\r\nVoice-Message: 2/8 (0/\r\n",
        b"\xff\xfe",
        b"Messages-Waiting yes\r\n",
    ],
)
def test_message_summary_refuses_malformed(body: bytes) -> None:
    with pytest.raises(EventBodyError):
        parse_message_summary(body)


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full"
 entity="sip:bob@x">&lol2;</dialog-info>"""


@pytest.mark.parametrize(
    "data",
    [
        BOMB,
        BOMB.decode().encode("utf-16"),  # the DTD in another encoding: refused by expat hooks
        b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><dialog-info version="0"/>',
        b'<dialog-info version="x"/>',
        b'<dialog-info version="0" state="weird"/>',
        b'<presence version="0"/>',
        b'<dialog-info version="0"><dialog id="1"><state>ringing</state></dialog></dialog-info>',
        b"<dialog-info",
        b"x" * 70_000,
    ],
)
def test_dialog_info_refuses_unsafe_or_malformed(data: bytes) -> None:
    with pytest.raises(EventBodyError):
        parse_dialog_info(data)


def test_dialog_info_bounded_dialog_count() -> None:
    many = [DialogInfoEntry(str(i), "confirmed") for i in range(300)]
    with pytest.raises(EventBodyError):
        parse_dialog_info(build_dialog_info("sip:x@y", 0, many))


def test_rfc4235_example_parses() -> None:
    """RFC 4235 §5's first example (an early dialog, Bob's phone ringing)."""
    data = b"""<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"
             version="0" state="full" entity="sip:alice@example.com">
  <dialog id="as7d900as8" call-id="a84b4c76e66710" local-tag="1928301774"
          direction="initiator">
    <state>early</state>
  </dialog>
</dialog-info>"""
    info = parse_dialog_info(data)
    assert info.entity == "sip:alice@example.com"
    (entry,) = info.dialogs
    assert (entry.id, entry.state, entry.direction, entry.call_id) == (
        "as7d900as8",
        "early",
        "initiator",
        "a84b4c76e66710",
    )
    assert blf_state(info) == "ringing"


@pytest.mark.parametrize(
    ("states", "lamp"),
    [
        ((), "idle"),
        (("terminated",), "idle"),
        (("trying",), "ringing"),
        (("early", "terminated"), "ringing"),
        (("early", "confirmed"), "busy"),
    ],
)
def test_blf_state(states: tuple[str, ...], lamp: str) -> None:
    info = DialogInfo("sip:x@y", 0, "full", tuple(DialogInfoEntry(s, s) for s in states))
    assert blf_state(info) == lamp


def test_partial_documents_update_the_known_dialogs() -> None:
    """RFC 4235 §4.1: a partial document changes only the dialogs it names; a full one
    replaces everything; terminated dialogs go."""
    first = DialogInfo(
        "sip:bob@x",
        0,
        "full",
        (DialogInfoEntry("a", "confirmed"), DialogInfoEntry("b", "early")),
    )
    known = apply_dialog_info({}, first)
    assert sorted(known) == ["a", "b"]
    update = DialogInfo("sip:bob@x", 1, "partial", (DialogInfoEntry("a", "terminated"),))
    known = apply_dialog_info(known, update)
    assert list(known) == ["b"]
    lamp = blf_state(DialogInfo("sip:bob@x", 1, "partial", tuple(known.values())))
    assert lamp == "ringing"
    known = apply_dialog_info(known, DialogInfo("sip:bob@x", 2, "full", ()))
    assert known == {}


def test_partial_documents_are_bounded() -> None:
    known: dict[str, DialogInfoEntry] = {}
    for n in range(400):
        known = apply_dialog_info(
            known, DialogInfo("sip:x@y", n, "partial", (DialogInfoEntry(str(n), "early"),))
        )
    assert len(known) == MAX_DIALOGS
    assert "399" in known
    assert "0" not in known
