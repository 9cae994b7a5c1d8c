"""State documents of two event packages: dialog-info (RFC 4235) and message-summary (RFC 3842).

Both are parsed from bytes a peer sent, so both parsers are bounded (``max_size``) and raise
only :class:`EventBodyError`. The XML parser is the standard library's, used with the care
defusedxml takes: a document carrying a DOCTYPE or an entity declaration is refused before
parsing, so no entity can expand ("billion laughs") and no external entity is fetched.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import xml.parsers.expat as expat
from collections.abc import Iterable

import attrs

from rvoip_session_core._errors import SessionError

__all__ = [
    "DIALOG_INFO_TYPE",
    "DIALOG_STATES",
    "MAX_BODY_SIZE",
    "MESSAGE_SUMMARY_TYPE",
    "DialogInfo",
    "DialogInfoEntry",
    "EventBodyError",
    "MessageCounts",
    "MessageSummary",
    "apply_dialog_info",
    "blf_state",
    "build_dialog_info",
    "build_message_summary",
    "parse_dialog_info",
    "parse_message_summary",
]

DIALOG_INFO_TYPE = "application/dialog-info+xml"
"""RFC 4235 §4: the dialog package's body type."""
MESSAGE_SUMMARY_TYPE = "application/simple-message-summary"
"""RFC 3842 §5: the message-summary package's body type."""
MAX_BODY_SIZE = 65_536
"""Default bound of a state document we parse, bytes (a NOTIFY body is far smaller)."""
MAX_DIALOGS = 256
"""The most ``<dialog>`` elements a parsed dialog-info document may hold."""

_NS = "urn:ietf:params:xml:ns:dialog-info"
DIALOG_STATES = ("trying", "proceeding", "early", "confirmed", "terminated")
"""RFC 4235 §3.7.1: the dialog states, in the order a dialog moves through them."""
_DANGEROUS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class EventBodyError(SessionError):
    """A state document (dialog-info, message-summary) is malformed, too big or unsafe."""


# --- dialog-info (RFC 4235) ----------------------------------------------------------------


@attrs.frozen
class DialogInfoEntry:
    """One ``<dialog>`` of a dialog-info document (RFC 4235 §4.1).

    Attributes:
        id: The dialog's identifier within the document.
        state: ``trying``, ``proceeding``, ``early``, ``confirmed`` or ``terminated``.
        direction: ``initiator`` (the entity called) or ``recipient`` (it was called).
        call_id: Call-ID of the dialog, when shown.
        local_tag: The entity's tag.
        remote_tag: The peer's tag.
        local_identity: The entity's URI in the dialog.
        remote_identity: The peer's URI.
        event: The ``event`` attribute of ``<state>`` (``cancelled``, ``rejected`` …).
    """

    id: str
    state: str
    direction: str | None = None
    call_id: str | None = None
    local_tag: str | None = None
    remote_tag: str | None = None
    local_identity: str | None = None
    remote_identity: str | None = None
    event: str | None = None


@attrs.frozen
class DialogInfo:
    """A dialog-info document: ``version``, ``full``/``partial`` and the dialogs."""

    entity: str
    version: int
    state: str
    dialogs: tuple[DialogInfoEntry, ...] = ()


def build_dialog_info(
    entity: str, version: int, dialogs: Iterable[DialogInfoEntry], *, full: bool = True
) -> bytes:
    """Serialize a dialog-info document (RFC 4235 §4).

    ``version`` counts the documents sent in one subscription, from 0 (§4.1.1); a ``full``
    document lists every dialog (the package's only mode we send).
    """
    root = ET.Element(
        "dialog-info",
        {
            "xmlns": _NS,
            "version": str(version),
            "state": "full" if full else "partial",
            "entity": entity,
        },
    )
    for entry in dialogs:
        attributes = {"id": entry.id}
        for name, value in (
            ("call-id", entry.call_id),
            ("local-tag", entry.local_tag),
            ("remote-tag", entry.remote_tag),
            ("direction", entry.direction),
        ):
            if value is not None:
                attributes[name] = value
        element = ET.SubElement(root, "dialog", attributes)
        state = ET.SubElement(element, "state", {"event": entry.event} if entry.event else {})
        state.text = entry.state
        for side, identity in (("local", entry.local_identity), ("remote", entry.remote_identity)):
            if identity is not None:
                ET.SubElement(ET.SubElement(element, side), "identity").text = identity
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + text


def _safe_xml(data: bytes, max_size: int) -> ET.Element:
    if len(data) > max_size:
        raise EventBodyError(f"document of {len(data)} bytes exceeds {max_size}")
    if _DANGEROUS.search(data):
        # No DTD at all: entity expansion and external entities cannot happen.
        raise EventBodyError("document declares a DOCTYPE or ENTITY (refused)")
    # pyexpat straight into a TreeBuilder, with every DTD handler refusing (as defusedxml
    # does): a DTD in another encoding (UTF-16) slips past the byte check, not past these.
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    try:
        parser.Parse(data, True)
        return builder.close()
    except (expat.ExpatError, ValueError, UnicodeError, AssertionError) as exc:
        raise EventBodyError(f"malformed XML: {exc}") from None


def _refuse_dtd(*_args: object) -> int:
    raise EventBodyError("document declares a DOCTYPE or ENTITY (refused)")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _identity(element: ET.Element, side: str) -> str | None:
    part = _child(element, side)
    if part is None:
        return None
    identity = _child(part, "identity")
    if identity is None or identity.text is None:
        return None
    return identity.text.strip()


def parse_dialog_info(data: bytes, *, max_size: int = MAX_BODY_SIZE) -> DialogInfo:
    """Parse an ``application/dialog-info+xml`` document (RFC 4235 §4).

    Raises:
        EventBodyError: too big, a DTD, malformed XML, not dialog-info, a bad version or
            state, or more than ``MAX_DIALOGS`` dialogs.
    """
    root = _safe_xml(data, max_size)
    if _local(root.tag) != "dialog-info":
        raise EventBodyError(f"not a dialog-info document: <{_local(root.tag)}>")
    version_text = root.get("version", "")
    if not version_text.isdigit() or len(version_text) > 10:
        raise EventBodyError(f"bad dialog-info version {version_text[:20]!r}")
    doc_state = root.get("state", "full")
    if doc_state not in ("full", "partial"):
        raise EventBodyError(f"bad dialog-info state {doc_state[:20]!r}")
    entries: list[DialogInfoEntry] = []
    for element in root:
        if _local(element.tag) != "dialog":
            continue  # RFC 4235 §4: unknown elements are ignored
        if len(entries) >= MAX_DIALOGS:
            raise EventBodyError(f"more than {MAX_DIALOGS} dialogs")
        state_el = _child(element, "state")
        state = (state_el.text or "").strip().lower() if state_el is not None else ""
        if state not in DIALOG_STATES:
            raise EventBodyError(f"bad dialog state {state[:20]!r}")
        entries.append(
            DialogInfoEntry(
                id=element.get("id", ""),
                state=state,
                direction=element.get("direction"),
                call_id=element.get("call-id"),
                local_tag=element.get("local-tag"),
                remote_tag=element.get("remote-tag"),
                local_identity=_identity(element, "local"),
                remote_identity=_identity(element, "remote"),
                event=state_el.get("event") if state_el is not None else None,
            )
        )
    return DialogInfo(root.get("entity", ""), int(version_text), doc_state, tuple(entries))


def apply_dialog_info(
    known: dict[str, DialogInfoEntry], info: DialogInfo
) -> dict[str, DialogInfoEntry]:
    """The live dialogs after ``info``, given those ``known`` before it (RFC 4235 §4.1).

    A ``full`` document replaces what was known; a ``partial`` one updates the dialogs it
    names. Terminated dialogs are dropped; at most ``MAX_DIALOGS`` are kept (the oldest
    go first), so a stream of partial documents cannot grow without bound.
    """
    dialogs = {} if info.state == "full" else dict(known)
    for entry in info.dialogs:
        dialogs.pop(entry.id, None)
        if entry.state != "terminated":
            dialogs[entry.id] = entry
    while len(dialogs) > MAX_DIALOGS:
        del dialogs[next(iter(dialogs))]
    return dialogs


def blf_state(info: DialogInfo) -> str:
    """What a busy-lamp field shows for a dialog-info document: busy, ringing or idle.

    ``busy`` when any dialog is confirmed, else ``ringing`` when one is early (or being
    set up: trying/proceeding), else ``idle``.
    """
    states = {entry.state for entry in info.dialogs}
    if "confirmed" in states:
        return "busy"
    if states & {"trying", "proceeding", "early"}:
        return "ringing"
    return "idle"


# --- message-summary (RFC 3842) ------------------------------------------------------------

_MSG_CLASSES: tuple[str, ...] = (
    "voice-message",
    "fax-message",
    "pager-message",
    "multimedia-message",
    "text-message",
    "none",
)
# RFC 3842 §5.2: msg-summary-line = message-context-class HCOLON newmsgs SLASH oldmsgs
#                 [ LPAREN new-urgentmsgs SLASH old-urgentmsgs RPAREN ]
_COUNTS = re.compile(
    r"\s*(\d{1,9})\s*/\s*(\d{1,9})\s*(?:\(\s*(\d{1,9})\s*/\s*(\d{1,9})\s*\))?\s*\Z"
)
MAX_SUMMARY_LINES = 64
"""The most header lines a message-summary body may have."""


@attrs.frozen
class MessageCounts:
    """New and old messages of one class, and how many of each are urgent (RFC 3842 §5.2)."""

    new: int
    old: int
    new_urgent: int = 0
    old_urgent: int = 0


@attrs.frozen
class MessageSummary:
    """A message-summary document (RFC 3842 §5.2).

    Attributes:
        waiting: ``Messages-Waiting: yes``.
        account: ``Message-Account`` (the mailbox URI), if given.
        counts: Counts by message class (``voice-message`` …, lower-cased).
    """

    waiting: bool
    account: str | None = None
    counts: tuple[tuple[str, MessageCounts], ...] = ()

    @property
    def voice(self) -> MessageCounts | None:
        """The ``Voice-Message`` counts, if given."""
        return dict(self.counts).get("voice-message")


def parse_message_summary(data: bytes, *, max_size: int = MAX_BODY_SIZE) -> MessageSummary:
    """Parse an ``application/simple-message-summary`` body (RFC 3842 §5.2).

    Lines after the summary (a blank line, then optional message headers) are ignored,
    as are unknown header lines.

    Raises:
        EventBodyError: too big, not text, no ``Messages-Waiting``, bad counts.
    """
    if len(data) > max_size:
        raise EventBodyError(f"message summary of {len(data)} bytes exceeds {max_size}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise EventBodyError("message summary is not UTF-8 text") from None
    waiting: bool | None = None
    account: str | None = None
    counts: list[tuple[str, MessageCounts]] = []
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n")):
        if not line.strip():
            break  # RFC 3842 §5.2: a blank line ends the summary; message headers follow
        if number >= MAX_SUMMARY_LINES:
            raise EventBodyError(f"more than {MAX_SUMMARY_LINES} summary lines")
        name, sep, value = line.partition(":")
        if not sep:
            raise EventBodyError(f"summary line without a colon: {line[:40]!r}")
        key = name.strip().lower()
        value = value.strip()
        if key == "messages-waiting":
            if value.lower() not in ("yes", "no"):
                raise EventBodyError(f"Messages-Waiting must be yes or no, not {value[:20]!r}")
            waiting = value.lower() == "yes"
        elif key == "message-account":
            account = value
        elif key in _MSG_CLASSES:
            match = _COUNTS.match(value)
            if match is None:
                raise EventBodyError(f"bad {name.strip()} counts {value[:40]!r}")
            new, old, new_urgent, old_urgent = match.groups()
            counts.append(
                (key, MessageCounts(int(new), int(old), int(new_urgent or 0), int(old_urgent or 0)))
            )
    if waiting is None:
        raise EventBodyError("no Messages-Waiting line")
    return MessageSummary(waiting, account, tuple(counts))


def build_message_summary(summary: MessageSummary) -> bytes:
    """Serialize a message summary (RFC 3842 §5.2), e.g. for a voicemail notifier."""
    lines = [f"Messages-Waiting: {'yes' if summary.waiting else 'no'}"]
    if summary.account is not None:
        lines.append(f"Message-Account: {summary.account}")
    for cls, c in summary.counts:
        name = "-".join(part.capitalize() for part in cls.split("-"))
        line = f"{name}: {c.new}/{c.old}"
        if c.new_urgent or c.old_urgent:
            line += f" ({c.new_urgent}/{c.old_urgent})"
        lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")
