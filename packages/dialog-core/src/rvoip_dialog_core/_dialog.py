"""One SIP dialog (RFC 3261 §12): its identity, state and the requests it builds."""

from __future__ import annotations

import random
from typing import NamedTuple

import attrs

from rvoip_sip_core import (
    From,
    RecordRoute,
    Request,
    Response,
    SipUri,
    To,
    Uri,
    make_request,
    new_branch,
)
from rvoip_sip_core._lexer import quote

from ._config import DialogConfig
from ._states import DialogState, Role, Trigger, transition

__all__ = [
    "Dialog",
    "DialogId",
    "DialogState",
    "LegId",
    "Role",
    "format_party",
    "party_of",
]

MAX_CSEQ = 2**31 - 1
"""RFC 3261 §8.1.1.5: the CSeq sequence number MUST be less than 2**31."""


@attrs.frozen(cache_hash=True)  # hot path: a dict key of every lookup
class LegId:
    """One side of a call before the remote tag is known: Call-ID and our own tag.

    All the dialogs forked from one INVITE share it, so the session layer keys calls by it.
    """

    call_id: str
    local_tag: str


class DialogId(NamedTuple):
    """RFC 3261 §12: a dialog is identified by Call-ID, local tag and remote tag.

    A named tuple (hot path: it keys the dialog tables of every layer above, and a tuple
    hashes and compares in C).
    """

    call_id: str
    local_tag: str
    remote_tag: str

    @property
    def leg(self) -> LegId:
        """The call leg this dialog belongs to."""
        return LegId(self.call_id, self.local_tag)


def format_party(
    display_name: str | None, uri: Uri, params: tuple[tuple[str, str | None], ...]
) -> str:
    """Serialize a name-addr (From/To/Contact style) with its parameters."""
    name = f"{quote(display_name)} " if display_name else ""
    tail = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)
    return f"{name}<{uri}>{tail}"


def party_of(header: From | To) -> str:
    """The From/To header value without its ``tag`` parameter (for the dialog's own copy)."""
    params = tuple((k, v) for k, v in header.params if k.lower() != "tag")
    return format_party(header.display_name, header.uri, params)


def _uri_of_route(element: str) -> Uri:
    return RecordRoute.parse(element).uri


def _is_loose(element: str) -> bool:
    uri = _uri_of_route(element)
    return isinstance(uri, SipUri) and uri.lr


@attrs.define(eq=False)
class Dialog:
    """The state of one dialog, kept by the dialog layer (RFC 3261 §12.1).

    Attributes:
        id: Call-ID, local tag, remote tag.
        role: Whether we were the caller or the callee of the creating INVITE.
        state: Early, confirmed or terminated.
        local_party: Our From (UAC) / To (UAS) value without the tag.
        remote_party: The peer's value without the tag.
        remote_target: Where requests go: the peer's Contact URI (target refresh changes it).
        route_set: Record-Route elements in the order requests carry them as Route.
        local_seq: CSeq of our last request in this dialog (None: none sent yet).
        remote_seq: CSeq of the peer's last request (None: none received yet).
        secure: True when the dialog was created over sips (RFC 3261 §12.1.1).
        invite_seq: CSeq of the INVITE that created the dialog (for ACK and CANCEL).
    """

    id: DialogId
    role: Role
    state: DialogState
    # Formatted on first use (hot path: a UAS that never sends a request never needs them).
    _local_party: str | From | To = attrs.field(alias="local_party")
    _remote_party: str | From | To = attrs.field(alias="remote_party")
    remote_target: Uri
    route_set: tuple[str, ...]
    local_seq: int | None
    remote_seq: int | None
    secure: bool
    invite_seq: int

    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """Create the dialog a caller gets from a 1xx (with To tag) or 2xx to its INVITE.

        RFC 3261 §12.1.2: route set from Record-Route in reverse order, remote target from
        the Contact, local CSeq from the request, remote CSeq empty.
        """
        tag = response.to.tag or ""
        dialog = cls(
            id=DialogId(request.call_id, request.from_.tag or "", tag),
            role=Role.UAC,
            state=transition(
                Role.UAC,
                DialogState.INIT,
                Trigger.SUCCESS if 200 <= response.status < 300 else Trigger.PROVISIONAL,
            ),
            local_party=request.from_,
            remote_party=response.to,
            remote_target=request.uri,
            route_set=(),
            local_seq=request.cseq.seq,
            remote_seq=None,
            secure=isinstance(request.uri, SipUri) and request.uri.scheme == "sips",
            invite_seq=request.cseq.seq,
        )
        dialog.update_from_response(response)
        return dialog

    @classmethod
    def from_uas(
        cls, request: Request, local_tag: str, *, dialog_id: DialogId | None = None
    ) -> Dialog:
        """Create the dialog a callee gets when it answers an INVITE with a tag.

        RFC 3261 §12.1.1: route set from Record-Route in order, remote target from the
        Contact, remote CSeq from the request, local CSeq empty. ``dialog_id``: the id
        already made of the request and ``local_tag``, when the caller has it.
        """
        # hot path (every incoming call): each header is read once.
        contacts = request.contacts
        from_ = request.from_
        target = contacts[0].uri if contacts and contacts[0].uri is not None else None
        if target is None:
            target = from_.uri
        if dialog_id is None:
            dialog_id = DialogId(request.call_id, local_tag, from_.tag or "")
        rrs = request.record_routes
        uri = request.uri
        seq = request.cseq.seq
        return cls(
            id=dialog_id,
            role=Role.UAS,
            state=transition(Role.UAS, DialogState.INIT, Trigger.PROVISIONAL),
            local_party=request.to,
            remote_party=from_,
            remote_target=target,
            route_set=tuple(str(rr) for rr in rrs) if rrs else (),
            local_seq=None,
            remote_seq=seq,
            secure=isinstance(uri, SipUri) and uri.scheme == "sips",
            invite_seq=seq,
        )

    @property
    def local_party(self) -> str:
        """Our From (UAC) / To (UAS) value without the tag."""
        party = self._local_party
        if not isinstance(party, str):
            party = self._local_party = party_of(party)
        return party

    @property
    def remote_party(self) -> str:
        """The peer's From / To value without the tag."""
        party = self._remote_party
        if not isinstance(party, str):
            party = self._remote_party = party_of(party)
        return party

    def update_from_response(self, response: Response) -> None:
        """Recompute route set and remote target from a response to the creating INVITE.

        RFC 3261 §12.1.2 and §13.2.2.4: a 2xx recomputes the route set of an early dialog.
        """
        if self.state is DialogState.TERMINATED or self.role is not Role.UAC:
            return
        rrs = response.record_routes
        self.route_set = tuple(str(rr) for rr in reversed(rrs))
        contacts = response.contacts
        if contacts and contacts[0].uri is not None:
            self.remote_target = contacts[0].uri

    def move(self, trigger: Trigger) -> None:
        """Change state as the role's transition table says (raises DialogUsageError if not)."""
        self.state = transition(self.role, self.state, trigger)

    def refresh_target(self, message: Request | Response) -> None:
        """RFC 3261 §12.2: a target refresh request or its 2xx replaces the remote target."""
        if self.state is DialogState.TERMINATED:
            return
        self.move(Trigger.REFRESH)
        contacts = message.contacts
        if contacts and contacts[0].uri is not None:
            self.remote_target = contacts[0].uri

    def accept_remote_cseq(self, request: Request) -> bool:
        """RFC 3261 §12.2.2: check and record the CSeq of a request from the peer.

        Returns False when the request is out of order (lower than the last one), which
        the caller answers 500. ACK and CANCEL reuse the INVITE's number and are not checked.
        """
        if request.method in ("ACK", "CANCEL"):
            return True
        seq = request.cseq.seq
        if self.remote_seq is not None and seq < self.remote_seq:
            return False
        self.remote_seq = seq
        return True

    def next_local_seq(self, rng: random.Random) -> int:
        """RFC 3261 §12.2.1.1: increment the local CSeq (choose one if none yet)."""
        if self.local_seq is None:
            # RFC 3261 §8.1.1.5: an arbitrary initial value below 2**31.
            self.local_seq = rng.randint(1, 2**16)
        else:
            self.local_seq = (self.local_seq % MAX_CSEQ) + 1
        return self.local_seq

    def request_uri_and_routes(self) -> tuple[Uri, tuple[str, ...]]:
        """RFC 3261 §12.2.1.1: the Request-URI and Route values for loose or strict routing."""
        if not self.route_set:
            return self.remote_target, ()
        first = self.route_set[0]
        if _is_loose(first):
            return self.remote_target, self.route_set
        # Strict router: it becomes the Request-URI (without header parameters), the remote
        # target goes last in the Route set.
        uri = _uri_of_route(first)
        if isinstance(uri, SipUri):
            uri = attrs.evolve(uri, headers=())
        return uri, (*self.route_set[1:], f"<{self.remote_target}>")

    def build_request(
        self,
        method: str,
        config: DialogConfig,
        rng: random.Random,
        *,
        cseq: int | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """Build an in-dialog request (RFC 3261 §12.2.1.1).

        A new CSeq is taken unless ``cseq`` is given (ACK and CANCEL reuse the INVITE's).
        The Via carries a new branch from ``rng``.
        """
        seq = cseq if cseq is not None else self.next_local_seq(rng)
        uri, routes = self.request_uri_and_routes()
        extra: list[tuple[str, str]] = [("Route", r) for r in routes]
        extra.extend(headers)
        # RFC 3261 §12.1.1 / §8.1.1.8: a dialog created by a sips: request keeps a sips:
        # Contact in every request of ours, even when the peer's target came back sip:.
        contact = config.contact_for(config.transport, True) if self.secure else config.contact
        return make_request(
            method,
            uri,
            from_=f"{self.local_party};tag={self.id.local_tag}",
            to=f"{self.remote_party};tag={self.id.remote_tag}",
            call_id=self.id.call_id,
            cseq=seq,
            via=make_via(config, rng),
            contact=None if method in ("ACK", "CANCEL", "BYE") else f"<{contact}>",
            headers=extra,
            body=body,
            content_type=content_type,
        )


def make_via(config: DialogConfig, rng: random.Random) -> str:
    """A Via for a new client transaction: our sent-by, a fresh branch, ``rport`` (RFC 3581)."""
    host = config.via_host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"SIP/2.0/{config.transport} {host}:{config.via_port};branch={new_branch(rng)};rport"
