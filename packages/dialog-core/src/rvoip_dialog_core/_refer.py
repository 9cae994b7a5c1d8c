"""REFER subscriptions (RFC 3515): accepting a transfer and reporting its progress by NOTIFY."""

from __future__ import annotations

import random
from collections.abc import Callable

from rvoip_sip_core import Response

from ._client import ClientRequests
from ._config import DialogConfig
from ._dialog import DialogId
from ._errors import DialogUsageError
from ._records import ClientRequest, ReferSubscription
from ._rules import sipfrag
from ._store import DialogStore
from ._uas import SIPFRAG_TYPE, UasRequests

__all__ = ["ReferSubscriptions"]


class ReferSubscriptions:
    """The implicit subscriptions of the REFERs we accepted (RFC 3515 §2.4.4).

    Args:
        config: Identity of the layer (``subscription_expires``).
        rng: Source of branches for the NOTIFYs.
        store: The live dialogs.
        uas: Answers the REFER (202).
        client: Sends the NOTIFYs.
        new_ref: Fresh reference numbers (the façade's).
    """

    def __init__(
        self,
        config: DialogConfig,
        rng: random.Random,
        store: DialogStore,
        uas: UasRequests,
        client: ClientRequests,
        new_ref: Callable[[], int],
    ) -> None:
        self._config = config
        self._rng = rng
        self._store = store
        self._uas = uas
        self._client = client
        self._new_ref = new_ref
        self._refers: dict[DialogId, int] = {}
        """REFERs accepted per dialog (the second and later get ``id=<CSeq>``)."""

    def configure(self, config: DialogConfig) -> None:
        """Use a new configuration from now on."""
        self._config = config

    def accept(
        self, ref: int, respond: Callable[[int, int, str], Response], now: float
    ) -> ReferSubscription:
        """Accept a REFER: 202, then the first NOTIFY (``SIP/2.0 100 Trying``, RFC 3515 §2.4.4).

        Args:
            ref: The REFER's ref (from :class:`ReferReceived`).
            respond: Sends the 202 (the façade's ``respond``: it also releases waiting
                re-INVITEs).
            now: Current time.

        Returns:
            The implicit subscription, for :meth:`notify`.
        """
        pending = self._uas.awaiting_answer(ref)
        if pending is None or pending.request.method != "REFER" or pending.dialog_id is None:
            raise DialogUsageError(f"no REFER awaiting an answer with ref {ref}")
        did = pending.dialog_id
        respond(ref, 202, "Accepted")
        count = self._refers.get(did, 0) + 1
        self._refers[did] = count
        # RFC 3515 §2.4.6: later REFERs in the same dialog are told apart by id=<CSeq>.
        event = "refer" if count == 1 else f"refer;id={pending.request.cseq.seq}"
        sub = ReferSubscription(did, event)
        self.notify(sub, 100, "Trying")
        return sub

    def notify(self, subscription: ReferSubscription, status: int, reason: str) -> int:
        """Report the referred call's progress in a NOTIFY with a sipfrag status line.

        A final status (>= 200) terminates the subscription (RFC 3515 §2.4.5).
        """
        if subscription.terminated:
            raise DialogUsageError("the REFER subscription is already terminated")
        dialog = self._store.require(subscription.dialog_id)
        if status >= 200:
            subscription.terminated = True
            state = "terminated;reason=noresource"
        else:
            state = f"active;expires={self._config.subscription_expires}"
        headers: tuple[tuple[str, str], ...] = (
            ("Event", subscription.event),
            ("Subscription-State", state),
        )
        req = dialog.build_request(
            "NOTIFY",
            self._config,
            self._rng,
            headers=headers,
            body=sipfrag(status, reason),
            content_type=SIPFRAG_TYPE,
        )
        ref = self._new_ref()
        self._client.send(ClientRequest(ref=ref, request=req, dialog_id=dialog.id))
        return ref

    def dialog_ended(self, did: DialogId) -> None:
        """Forget the dialog's REFER count."""
        if self._refers:
            self._refers.pop(did, None)
