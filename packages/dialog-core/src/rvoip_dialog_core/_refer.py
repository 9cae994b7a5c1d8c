"""REFER (RFC 3515): accepting a transfer and reporting its progress by NOTIFY."""

from __future__ import annotations

from ._errors import DialogUsageError
from ._records import ClientRequest, ReferSubscription
from ._rules import sipfrag
from ._server import SIPFRAG_TYPE, ServerSide

__all__ = ["ReferSide"]


class ReferSide(ServerSide):
    """The implicit subscription of an accepted REFER (RFC 3515 §2.4.4)."""

    def accept_refer(self, ref: int, *, now: float) -> ReferSubscription:
        """Accept a REFER: 202, then the first NOTIFY (``SIP/2.0 100 Trying``, RFC 3515 §2.4.4).

        Returns:
            The implicit subscription, for :meth:`notify_refer`.
        """
        pending = self._server.get(ref)
        if pending is None or pending.request.method != "REFER" or pending.dialog_id is None:
            raise DialogUsageError(f"no REFER awaiting an answer with ref {ref}")
        did = pending.dialog_id
        self.respond(ref, 202, "Accepted", now=now)
        count = self._refers.get(did, 0) + 1
        self._refers[did] = count
        # RFC 3515 §2.4.6: later REFERs in the same dialog are told apart by id=<CSeq>.
        event = "refer" if count == 1 else f"refer;id={pending.request.cseq.seq}"
        sub = ReferSubscription(did, event)
        self.notify_refer(sub, 100, "Trying", now=now)
        return sub

    def notify_refer(
        self, subscription: ReferSubscription, status: int, reason: str, *, now: float
    ) -> int:
        """Report the referred call's progress in a NOTIFY with a sipfrag status line.

        A final status (>= 200) terminates the subscription (RFC 3515 §2.4.5).
        """
        if subscription.terminated:
            raise DialogUsageError("the REFER subscription is already terminated")
        dialog = self._dialog(subscription.dialog_id)
        if status >= 200:
            subscription.terminated = True
            state = "terminated;reason=noresource"
        else:
            state = f"active;expires={self.config.subscription_expires}"
        headers: tuple[tuple[str, str], ...] = (
            ("Event", subscription.event),
            ("Subscription-State", state),
        )
        req = dialog.build_request(
            "NOTIFY",
            self.config,
            self._rng,
            headers=headers,
            body=sipfrag(status, reason),
            content_type=SIPFRAG_TYPE,
        )
        ref = self._new_ref()
        self._send(ClientRequest(ref=ref, request=req, dialog_id=dialog.id))
        return ref
