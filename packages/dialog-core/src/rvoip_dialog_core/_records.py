"""Internal bookkeeping records of the dialog layer (one per pending request or INVITE)."""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterator, ValuesView
from typing import Generic, Protocol, TypeVar

import attrs

from rvoip_sip_core import Request, Response, Uri

from ._auth import AuthAttempts
from ._dialog import Dialog, DialogId, LegId

__all__ = [
    "ClientRequest",
    "DeferredRequest",
    "DialogTable",
    "ReferSubscription",
    "ServerRequest",
    "UacInvite",
    "UasInvite",
]


@attrs.define(eq=False)
class ClientRequest:
    """A request we sent as a client transaction, keyed by (branch, method)."""

    ref: int
    request: Request
    dialog_id: DialogId | None
    leg: LegId | None = None
    """Set for the initial INVITE of a call leg (and its CANCEL)."""
    internal: bool = False
    """Sent by the layer itself (BYE after ACK timeout, losing fork): no event for the TU."""
    final: bool = False
    expires_at: float | None = None
    """When a completed INVITE stops absorbing 2xx retransmissions."""
    acks: dict[str, Request] = attrs.Factory(dict)
    """ACK sent per remote tag (re-sent for each 2xx retransmission, RFC 3261 §13.2.2.4)."""
    retry_at: float | None = None
    """RFC 3261 §14.1: when a request that got 491 is sent again."""
    refresh: bool = False
    """An UPDATE the layer sent to refresh the session (RFC 4028 §7.4)."""
    defer_ack: bool = False
    """The TU sends the ACK itself (``DialogLayer.ack``), to carry the SDP answer."""
    awaiting_ack: set[str] = attrs.Factory(set)
    """Remote tags whose 2xx waits for the TU's ACK (``defer_ack``)."""
    dialog: Dialog | None = None
    """The dialog a re-INVITE was sent in (to ACK a 2xx that arrives after it ended)."""
    auth: AuthAttempts | None = None
    """Realms answered with credentials so far (RFC 3261 §22: one retry per realm)."""


@attrs.define(eq=False)
class DeferredRequest:
    """A re-INVITE the TU asked for while another INVITE was in progress (RFC 3261 §14.1).

    It is sent, with the next CSeq, as soon as the dialog has no INVITE in progress.
    """

    ref: int
    dialog: Dialog
    body: bytes
    content_type: str | None
    headers: tuple[tuple[str, str], ...]
    defer_ack: bool


@attrs.define(eq=False)
class UacInvite:
    """The caller side of one initial INVITE: its early dialogs and the winning fork."""

    leg: LegId
    ref: int
    request: Request
    early: dict[str, Dialog] = attrs.Factory(dict)
    provisional: bool = False
    cancel_requested: bool = False
    cancel_sent: bool = False
    winner: DialogId | None = None
    failed: bool = False
    cancel_headers: tuple[tuple[str, str], ...] = ()
    """Extra header lines for the CANCEL (e.g. a Reason, RFC 3326)."""
    cancel_deadline: float | None = None
    """RFC 3261 §9.1: give up 64*T1 after the CANCEL if no final response came."""
    rseqs: dict[str, int] = attrs.Factory(dict)
    """RFC 3262 §4: last RSeq PRACKed per remote tag."""
    auth: AuthAttempts | None = None
    """Realms answered with credentials so far (RFC 3261 §22: one retry per realm)."""
    targets: list[Uri] = attrs.Factory(list)
    """RFC 3261 §8.1.3.4: Contacts of 3xx responses still to try, best q first."""
    tried: set[str] = attrs.Factory(set)
    """Every URI ever in the target set (never added twice: redirect loops end)."""
    redirects: int = 0
    """Targets tried after the first (bounded by ``DialogConfig.max_redirects``)."""


@attrs.define(eq=False)
class ServerRequest:
    """A request received on a server transaction that the TU (or the layer) must answer."""

    ref: int
    request: Request
    server: object
    dialog_id: DialogId | None
    final_sent: bool = False


@attrs.define(eq=False)
class UasInvite:
    """The callee side of an INVITE or re-INVITE: 2xx retransmission until the ACK.

    RFC 3261 §13.3.1.4: the 2xx is re-sent at T1, 2·T1, … capped at T2 until the ACK
    arrives; after 64·T1 without it the dialog is ended with a BYE.
    """

    pending: ServerRequest
    dialog_id: DialogId
    reinvite: bool
    response: Response | None = None
    interval: float = 0.0
    retransmit_at: float | None = None
    give_up_at: float | None = None
    rseq: int = 0
    """RFC 3262 §3: RSeq of our last reliable provisional response (0: none yet)."""
    reliable: Response | None = None
    """The reliable provisional awaiting its PRACK."""
    reliable_queue: list[Response] = attrs.Factory(list)
    """Reliable provisionals waiting for the outstanding one to be PRACKed."""
    prack_interval: float = 0.0
    prack_at: float | None = None
    prack_give_up: float | None = None
    bye_ref: int | None = None
    """RFC 3261 §15: the TU hung up before the ACK came; the BYE (with this ref) waits."""
    bye_headers: tuple[tuple[str, str], ...] = ()


@attrs.define(eq=False)
class ReferSubscription:
    """The implicit subscription of an accepted REFER (RFC 3515 §2.4.4).

    Passed back to ``DialogLayer.notify_refer`` to report the progress of the referred call.
    """

    dialog_id: DialogId
    event: str
    terminated: bool = False


class _OfDialog(Protocol):
    @property
    def dialog_id(self) -> DialogId | None: ...


K = TypeVar("K")
R = TypeVar("R", bound=_OfDialog)


class DialogTable(Generic[K, R]):
    """A dict of pending records that is also indexed by the dialog each one belongs to.

    Hot path: ACK, BYE and the end of a dialog find the dialog's records without walking
    every pending request of the layer. A record's ``dialog_id`` must not change once in.
    """

    __slots__ = ("_by_dialog", "_items", "get")

    def __init__(self) -> None:
        self._items: dict[K, R] = {}
        self._by_dialog: dict[DialogId, dict[K, R]] = {}
        # hot path: lookups go straight to the dict's own (C) get.
        self.get: Callable[[K], R | None] = self._items.get
        """The record under a key, or None."""

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __getitem__(self, key: K) -> R:
        return self._items[key]

    def values(self) -> ValuesView[R]:
        """All records, in insertion order."""
        return self._items.values()

    def items(self) -> ItemsView[K, R]:
        """All (key, record) pairs, in insertion order."""
        return self._items.items()

    def __setitem__(self, key: K, record: R) -> None:
        self.pop(key)
        self._items[key] = record
        did = record.dialog_id
        if did is not None:
            group = self._by_dialog.get(did)
            if group is None:
                group = self._by_dialog[did] = {}
            group[key] = record

    def __delitem__(self, key: K) -> None:
        if self.pop(key) is None:
            raise KeyError(key)

    def pop(self, key: K, default: R | None = None) -> R | None:
        """Remove and return the record under ``key`` (``default`` when there is none)."""
        record = self._items.pop(key, None)
        if record is None:
            return default
        did = record.dialog_id
        if did is not None:
            group = self._by_dialog[did]
            del group[key]
            if not group:
                del self._by_dialog[did]
        return record

    def of(self, dialog_id: DialogId) -> list[tuple[K, R]]:
        """The (key, record) pairs of one dialog, in insertion order (a copy)."""
        group = self._by_dialog.get(dialog_id)
        return list(group.items()) if group else []
