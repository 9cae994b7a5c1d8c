"""Client requests: what we send (out of dialog and in dialog), ACKs, 491 and 401/407 retries.

The initial INVITE's forks and CANCEL belong to :mod:`._uac`; this object keeps every
client transaction we started (keyed by top-Via branch and method), completed INVITEs
that still absorb 2xx retransmissions, ACKs held for the TU, requests waiting for their
RFC 3261 §14.1 glare retry and re-INVITEs waiting for the dialog's INVITE to end.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

import attrs

from rvoip_sip_core import (
    Request,
    Response,
    SessionExpires,
    Uri,
    make_request,
    make_response,
    new_call_id,
    new_tag,
    parse_uri,
)

from ._auth import AuthAttempts, Authenticator, AuthRefused
from ._config import WILDCARDS, DialogConfig
from ._dialog import Dialog, DialogId, DialogState, Role, make_via
from ._errors import DialogUsageError
from ._events import (
    AuthenticationFailed,
    GlareRetryScheduled,
    ResponseForRequest,
    SendAck,
    SendRequest,
    SessionRefreshDue,
    SessionRefreshed,
    TerminationReason,
)
from ._hooks import LayerHooks
from ._outbox import Outbox
from ._records import ClientRequest, DeferredRequest
from ._rules import glare_delay
from ._session_timer import SessionTimers
from ._states import Trigger, transition
from ._store import DialogStore
from ._timeline import Timeline

__all__ = ["REFRESH_FAILED", "ClientRequests", "Headers"]

Headers = Iterable[tuple[str, str]]

REFRESH_FAILED = ("Reason", 'SIP;cause=408;text="Session refresh failed"')
"""RFC 3326 Reason of the BYE sent when a session refresh we sent failed (RFC 4028 §10)."""

# Headers a dialog builds itself: a 491 retry makes them afresh, keeping the TU's others.
_REBUILT = frozenset(
    {
        "via",
        "route",
        "from",
        "to",
        "call-id",
        "cseq",
        "max-forwards",
        "contact",
        "content-length",
        "content-type",
    }
)
_LAYER_MADE = frozenset({"allow", "supported", "session-expires", "min-se", "user-agent"})


class ClientRequests:
    """Our client transactions and what their responses mean for dialogs.

    Args:
        config: Identity and timers of the layer.
        rng: Source of branches, tags, Call-IDs, CSeq starts and glare delays.
        stats: The layer's counters.
        outbox: Where actions and events go.
        store: The live dialogs.
        timeline: The layer's deadlines (completed INVITEs, glare retries).
        timers: Session timers (headers of refreshes, restarts on their 2xx).
        hooks: The façade (ending dialogs, "is an INVITE in progress").
    """

    def __init__(
        self,
        config: DialogConfig,
        rng: random.Random,
        stats: Counter[str],
        outbox: Outbox,
        store: DialogStore,
        timeline: Timeline,
        timers: SessionTimers,
        hooks: LayerHooks,
    ) -> None:
        self._config = config
        self._rng = rng
        self._stats = stats
        self._out = outbox
        self._store = store
        self._timeline = timeline
        self._timers = timers
        self._hooks = hooks
        self._client: dict[tuple[str, str], ClientRequest] = {}
        # INVITEs that got their 2xx: kept 64*T1 to ACK retransmissions and late forks.
        self._completed: dict[tuple[str, str], ClientRequest] = {}
        # 2xx whose ACK the TU sends itself (defer_ack): dialog -> (request, remote key).
        self._held: dict[DialogId, tuple[ClientRequest, str]] = {}
        self._retries: list[ClientRequest] = []
        self.deferred: list[DeferredRequest] = []
        """Re-INVITEs waiting for their dialog's INVITE transaction to end (read-only for
        others: the layer tests it before calling :meth:`send_deferred`, a hot path)."""
        self._auth = self._authenticator(config)

    def _authenticator(self, config: DialogConfig) -> Authenticator:
        return Authenticator(
            config.credentials,
            algorithms=config.auth_algorithms,
            require_qop=config.auth_require_qop,
            retries=config.auth_retries,
            rng=self._rng,
        )

    def configure(self, config: DialogConfig) -> None:
        """Use a new configuration from now on."""
        old = self._config
        self._config = config
        if (
            config.credentials,
            config.auth_algorithms,
            config.auth_require_qop,
            config.auth_retries,
        ) != (old.credentials, old.auth_algorithms, old.auth_require_qop, old.auth_retries):
            # New credentials start new nonce counts (they answer other challenges).
            self._auth = self._authenticator(config)

    def authorize(
        self, request: Request, response: Response, attempts: AuthAttempts
    ) -> Request | AuthRefused:
        """``request`` carrying credentials for the 401/407 ``response``, or why not.

        See :meth:`._auth.Authenticator.retry`; the caller sets the new CSeq and Via.
        """
        return self._auth.retry(request, response, attempts)

    # --- the table ------------------------------------------------------------------------

    def send(self, creq: ClientRequest) -> None:
        """Start a client transaction for ``creq`` (the driver sends the request)."""
        request = creq.request
        self._client[(request.top_via.branch or "", request.method)] = creq
        self._out.send(SendRequest(request))

    def send_internal(self, request: Request) -> None:
        """Send a request the layer decided on (BYE of a losing fork, PRACK): no TU event."""
        self.send(ClientRequest(self._hooks.new_ref(), request, None, internal=True))

    def match(self, response: Response) -> ClientRequest | None:
        """Our request a response answers (an open or a completed transaction)."""
        key = (response.top_via.branch or "", response.cseq.method)
        return self._client.get(key) or self._completed.get(key)

    def open(self, request: Request) -> ClientRequest | None:
        """Our open (not completed) client transaction for ``request``."""
        return self._client.get((request.top_via.branch or "", request.method))

    def close(self, creq: ClientRequest) -> None:
        """Forget an open client transaction (a final response came)."""
        request = creq.request
        key = (request.top_via.branch or "", request.method)
        if self._client.pop(key, None) is creq and creq.expires_at is not None:
            self._timeline.cancel(creq)

    def close_key(self, branch: str, method: str) -> None:
        """Forget the open client transaction (branch, method), if any."""
        creq = self._client.pop((branch, method), None)
        if creq is not None and creq.expires_at is not None:
            self._timeline.cancel(creq)

    def complete(self, creq: ClientRequest, now: float) -> None:
        """Our INVITE got its (first) 2xx: keep it 64*T1 for retransmissions and forks."""
        request = creq.request
        key = (request.top_via.branch or "", request.method)
        self._client.pop(key, None)
        creq.final = True
        creq.expires_at = now + 64 * self._config.t1
        self._completed[key] = creq
        self._timeline.set(creq, creq.expires_at)

    def pending(self, did: DialogId, methods: tuple[str, ...]) -> bool:
        """Whether a request of ours in ``methods`` is open in the dialog.

        A request waiting for its §14.1 retry is not pending: the peer's may go first.
        """
        return any(
            c.dialog_id == did and c.request.method in methods and not c.final
            for c in self._client.values()
        )

    def holds_ack(self, did: DialogId) -> bool:
        """Whether a 2xx of the dialog waits for the TU's ACK (``defer_ack``)."""
        return did in self._held

    # --- ACK -------------------------------------------------------------------------------

    def resend_ack(self, creq: ClientRequest, remote: str) -> bool:
        """RFC 3261 §13.2.2.4: a retransmitted 2xx gets the same ACK again (True: handled)."""
        ack = creq.acks.get(remote)
        if ack is not None:
            self._stats["2xx_retransmission"] += 1
            self._out.send(SendAck(ack))
            return True
        if remote in creq.awaiting_ack:
            self._stats["2xx_awaiting_tu_ack"] += 1
            return True
        return False

    def hold_ack(self, creq: ClientRequest, did: DialogId, remote: str) -> None:
        """Keep the 2xx's ACK for the TU (``defer_ack``): it sends it with :meth:`ack`."""
        creq.awaiting_ack.add(remote)
        self._held[did] = (creq, remote)

    def send_ack(
        self,
        creq: ClientRequest,
        dialog: Dialog,
        remote: str,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> None:
        """ACK a 2xx to our INVITE."""
        # RFC 3261 §13.2.2.4: the ACK has the INVITE's CSeq number, a new branch, and goes
        # to the dialog's remote target along its route set.
        ack = dialog.build_request(
            "ACK",
            self._config,
            self._rng,
            cseq=creq.request.cseq.seq,
            body=body,
            content_type=content_type,
        )
        creq.acks[remote] = ack
        creq.awaiting_ack.discard(remote)
        held = self._held.get(dialog.id)
        if held is not None and held[0] is creq:
            del self._held[dialog.id]
        self._out.send(SendAck(ack))

    def ack(
        self, dialog_id: DialogId, body: bytes = b"", *, content_type: str | None = None
    ) -> None:
        """Send the ACK held back for the TU (``defer_ack``), e.g. with the SDP answer.

        Raises:
            DialogUsageError: no 2xx of this dialog is waiting for an ACK.
        """
        dialog = self._store.require(dialog_id)
        held = self._held.get(dialog_id)
        if held is None:
            raise DialogUsageError(f"no 2xx waiting for an ACK in dialog {dialog_id}")
        creq, remote = held
        if body and content_type is None:
            content_type = "application/sdp"
        self.send_ack(creq, dialog, remote, body, content_type)

    # --- requests outside a dialog --------------------------------------------------------

    def new_request(
        self,
        method: str,
        target: str | Uri,
        from_: str,
        to: str | None,
        call_id: str | None,
        tag: str | None,
        cseq: int | None,
        headers: list[tuple[str, str]],
        route: Iterable[str],
        body: bytes,
        content_type: str | None,
    ) -> Request:
        """Build a request outside any dialog (RFC 3261 §8.1.1)."""
        # RFC 3261 §8.1.1: a fresh Call-ID and From tag (RFC 3261 §19.3: cryptographically
        # random, from the layer's rng), and an arbitrary CSeq start below 2**31 (§8.1.1.5).
        uri = parse_uri(target) if isinstance(target, str) else target
        from_value = from_ if "<" in from_ else f"<{from_}>"
        to_value = to if to is not None else f"<{uri}>"
        if "<" not in to_value:
            to_value = f"<{to_value}>"
        config = self._config
        if config.outbound_proxy is not None and not route:
            # RFC 3261 §8.1.2: a UAC configured with an outbound proxy puts it in the Route
            # header (a loose route, ``;lr``) of requests that start a dialog or stand alone.
            route = (config.outbound_proxy,)
        extra = [("Route", r if "<" in r else f"<{r}>") for r in route]
        extra.extend(headers)
        own_contact = any(name.lower() in ("contact", "m") for name, _ in headers)
        if config.user_agent:
            extra.append(("User-Agent", config.user_agent))
        host = config.via_host
        return make_request(
            method,
            uri,
            from_=f"{from_value};tag={tag or new_tag(self._rng)}",
            to=to_value,
            # A wildcard bind is no host to name in a Call-ID (RFC 3261 §8.1.1.4: the
            # host part is optional).
            call_id=call_id or new_call_id(self._rng, None if host in WILDCARDS else host),
            cseq=cseq if cseq is not None else self._rng.randint(1, 2**16),
            via=make_via(config, self._rng),
            contact=None if own_contact else f"<{config.contact}>",
            headers=extra,
            body=body,
            content_type=content_type,
        )

    def send_request(
        self,
        method: str,
        target: str | Uri,
        *,
        from_: str,
        to: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Headers = (),
        route: Iterable[str] = (),
        call_id: str | None = None,
        tag: str | None = None,
        cseq: int | None = None,
    ) -> int:
        """Send a request outside any dialog (OPTIONS, MESSAGE, REGISTER …); returns its ref."""
        method = method.upper()
        if method in ("INVITE", "ACK", "CANCEL", "BYE", "PRACK"):
            raise DialogUsageError(f"{method} is not sent with send_request")
        extra = list(self._config.capabilities) if method == "OPTIONS" else []
        extra.extend(headers)
        request = self.new_request(
            method, target, from_, to, call_id, tag, cseq, extra, route, body, content_type
        )
        ref = self._hooks.new_ref()
        self.send(ClientRequest(ref=ref, request=request, dialog_id=None))
        return ref

    # --- requests in a dialog -------------------------------------------------------------

    def request(
        self,
        dialog: Dialog,
        method: str,
        body: bytes,
        content_type: str | None,
        headers: Headers,
        *,
        refresh: bool,
        defer_ack: bool = False,
        ref: int | None = None,
    ) -> int:
        """Send a request in ``dialog`` (RFC 3261 §12.2.1.1); returns its ref.

        A re-INVITE while another INVITE is in progress waits (§14.1); BYE ends the dialog
        as soon as it is sent (§15).
        """
        method = method.upper()
        if method in ("ACK", "CANCEL", "PRACK"):
            raise DialogUsageError(f"{method} is sent by the layer itself")
        if method == "INVITE" and dialog.state is not DialogState.CONFIRMED:
            raise DialogUsageError(f"re-INVITE needs a confirmed dialog: {dialog.id}")
        if method == "INVITE" and self._hooks.invite_in_progress(dialog.id):
            # RFC 3261 §14.1: no new INVITE while another is in progress in either direction:
            # it waits (see send_deferred).
            ref = self._hooks.new_ref() if ref is None else ref
            self.deferred.append(
                DeferredRequest(ref, dialog, body, content_type, tuple(headers), defer_ack)
            )
            return ref
        if method == "BYE":
            transition(dialog.role, dialog.state, Trigger.LOCAL_BYE)  # raises when not allowed
        config = self._config
        extra = list(headers)
        if method in ("INVITE", "UPDATE", "OPTIONS"):
            extra[:0] = config.capabilities
        if method in ("INVITE", "UPDATE"):
            extra.extend(self._timers.request_headers(dialog.id))
        if config.user_agent:
            extra.append(("User-Agent", config.user_agent))
        if body and content_type is None and method in ("INVITE", "UPDATE"):
            content_type = "application/sdp"
        req = dialog.build_request(
            method, config, self._rng, headers=tuple(extra), body=body, content_type=content_type
        )
        creq = ClientRequest(
            ref=self._hooks.new_ref() if ref is None else ref,
            request=req,
            dialog_id=dialog.id,
            refresh=refresh,
            defer_ack=defer_ack,
            dialog=dialog,
        )
        self.send(creq)
        if method == "BYE":
            # RFC 3261 §15: the session and dialog end as soon as the BYE is sent.
            self._hooks.end_dialog(dialog, TerminationReason.LOCAL_BYE)
        return creq.ref

    def send_deferred(self) -> None:
        """Send the re-INVITEs that waited for the dialog's INVITE transaction to end."""
        if not self.deferred:
            return  # hot path: runs after every input, and there is rarely one waiting
        for deferred in list(self.deferred):
            dialog = deferred.dialog
            if not self._store.holds(dialog):
                # The dialog ended before the re-INVITE could go: report a 481 for it.
                self.deferred.remove(deferred)
                never_sent = dialog.build_request("INVITE", self._config, self._rng)
                gone = make_response(never_sent, 481, "Call/Transaction Does Not Exist")
                self._out.emit(ResponseForRequest(deferred.ref, dialog.id, "INVITE", gone))
            elif not self._hooks.invite_in_progress(dialog.id):
                self.deferred.remove(deferred)
                self.request(
                    dialog,
                    "INVITE",
                    deferred.body,
                    deferred.content_type,
                    deferred.headers,
                    refresh=False,
                    defer_ack=deferred.defer_ack,
                    ref=deferred.ref,
                )

    # --- responses ------------------------------------------------------------------------

    def on_response(self, creq: ClientRequest, response: Response, now: float) -> None:
        """A response to a request of ours other than an initial INVITE."""
        method = creq.request.method
        if method == "CANCEL":
            if response.status >= 200:
                self.close(creq)
        elif method == "INVITE":
            self._reinvite_response(creq, response, now)
        elif response.status >= 200:
            self.close(creq)
            self._final(creq, response, now)

    def failed(self, request: Request, status: int, reason: str) -> Response | None:
        """Our transaction for ``request`` timed out or its transport failed.

        Returns:
            The response to act on as if received (408/503, RFC 3261 §8.1.3.1), or None
            when nothing waits for one.
        """
        creq = self.open(request)
        if creq is None or creq.final:
            return None
        if request.method == "CANCEL":
            self.close(creq)
            return None
        return make_response(creq.request, status, reason)

    def fail_over(self, creq: ClientRequest) -> Request | None:
        """``creq``'s request with a new branch, tracked in its place (RFC 3263 §4.3).

        Only for a request outside a dialog that is still open (not ACK nor CANCEL: they
        follow their INVITE). The new request is not sent: the driver sends it to the
        next located target.
        """
        request = creq.request
        if creq.final or creq.dialog_id is not None or request.method in ("ACK", "CANCEL"):
            return None
        retried = request.with_header("Via", make_via(self._config, self._rng))
        self.close(creq)
        creq.request = retried
        self._client[(retried.top_via.branch or "", retried.method)] = creq
        self._stats["failovers"] += 1
        return retried

    def _reinvite_response(self, creq: ClientRequest, response: Response, now: float) -> None:
        status = response.status
        if status < 200:
            return
        dialog = self._store.get(creq.dialog_id) if creq.dialog_id else None
        if 200 <= status < 300:
            if self.resend_ack(creq, ""):
                return
            self.complete(creq, now)
            if dialog is None:
                # The dialog ended (BYE) while the re-INVITE was out: ACK the 2xx anyway,
                # so the peer stops retransmitting it.
                if creq.dialog is not None:
                    self.send_ack(creq, creq.dialog, "")
                return
            # RFC 3261 §12.2.1.2: the 2xx to a target refresh updates the remote target.
            dialog.refresh_target(response)
            self._timers.from_response(dialog.id, response, now)
            if creq.defer_ack:
                self.hold_ack(creq, dialog.id, "")
            else:
                self.send_ack(creq, dialog, "")
            self._out.emit(ResponseForRequest(creq.ref, creq.dialog_id, "INVITE", response))
            return
        if creq.final:
            return
        self.close(creq)
        self._final(creq, response, now)

    def _final(self, creq: ClientRequest, response: Response, now: float) -> None:
        creq.final = True
        method = creq.request.method
        status = response.status
        if status in (401, 407) and self._retry_auth(creq, response):
            return
        dialog = self._store.get(creq.dialog_id) if creq.dialog_id else None
        if (
            status == 422
            and method in ("INVITE", "UPDATE")
            and dialog is not None
            and self._timers.raise_interval(dialog.id, creq.request, response)
        ):
            # RFC 4028 §7.4: "the UAC MAY retry the request with a Session-Expires ... equal
            # to the value of the Min-SE header field in the 422": same request, next CSeq.
            self._retry_422(creq, response)
            return
        if status == 491 and method in ("INVITE", "UPDATE") and dialog is not None:
            # RFC 3261 §14.1: glare; try again after a random wait.
            creq.final = False
            creq.retry_at = now + glare_delay(dialog.role is Role.UAC, self._rng)
            self._retries.append(creq)
            self._timeline.set(creq, creq.retry_at)
            self._out.emit(GlareRetryScheduled(creq.ref, dialog.id, creq.retry_at))
            return
        if 200 <= status < 300 and method == "UPDATE" and dialog is not None:
            dialog.refresh_target(response)
            self._timers.from_response(dialog.id, response, now)
            if creq.refresh:
                timer = self._timers.get(dialog.id)
                if timer is not None:
                    self._out.emit(SessionRefreshed(dialog.id, timer.interval))
        elif creq.refresh and dialog is not None:
            timer = self._timers.get(dialog.id)
            if status in (408, 481) and timer is not None and timer.own:
                # RFC 4028 §10: our own refresh (the peer runs no timer) failed (timed out,
                # or the peer no longer knows the dialog): the session is over; end it with
                # a BYE saying why.
                self._stats["session_refresh_failed"] += 1
                self._hooks.send_bye(
                    dialog, TerminationReason.SESSION_EXPIRED, None, (REFRESH_FAILED,)
                )
                return
            # RFC 4028 §7.4: the UPDATE refresh failed (e.g. 405): the TU re-INVITEs instead.
            self._out.emit(SessionRefreshDue(dialog.id))
        if not creq.internal and not creq.refresh:
            self._out.emit(ResponseForRequest(creq.ref, creq.dialog_id, method, response))
        if (
            dialog is not None
            and status in (408, 481)
            and method not in ("BYE", "PRACK")
            and not self._hooks.awaiting_ack(dialog.id)
        ):
            # RFC 3261 §12.2.1.2: a 481 or 408 to a request in a dialog ends the dialog (not
            # to PRACK: RFC 3262 §3 answers 481 once the provisional is no longer pending).
            # Not while our 2xx waits for its ACK: the peer may just not have it yet; the
            # retransmissions go on and the ACK timeout ends a dead dialog.
            reason = TerminationReason.NO_DIALOG if status == 481 else TerminationReason.TIMEOUT
            self._hooks.end_dialog(dialog, reason, status)

    def _retry_auth(self, creq: ClientRequest, response: Response) -> bool:
        """Send ``creq``'s request again with credentials (True), or report why not."""
        old = creq.request
        attempts = creq.auth if creq.auth is not None else AuthAttempts()
        result = self._auth.retry(old, response, attempts)
        if isinstance(result, AuthRefused):
            if not creq.internal:
                self._out.emit(
                    AuthenticationFailed(
                        creq.ref,
                        None,
                        creq.dialog_id,
                        old.method,
                        result.status,
                        result.realm,
                        result.reason,
                    )
                )
            return False
        # RFC 3261 §22.2 (and §8.1.3.5): the retried request has the same Call-ID, From and
        # To, a new CSeq (the dialog's next one when the dialog still lives, RFC 3261
        # §12.2.1.1) and, as a new client transaction, a new branch.
        dialog = self._store.get(creq.dialog_id) if creq.dialog_id else None
        seq = dialog.next_local_seq(self._rng) if dialog is not None else old.cseq.seq + 1
        headers = result.headers.with_("CSeq", f"{seq} {old.method}")
        headers = headers.with_("Via", make_via(self._config, self._rng))
        self._stats["auth_retries"] += 1
        self.send(
            ClientRequest(
                ref=creq.ref,
                request=attrs.evolve(result, headers=headers),
                dialog_id=creq.dialog_id,
                internal=creq.internal,
                refresh=creq.refresh,
                defer_ack=creq.defer_ack,
                dialog=creq.dialog,
                auth=attempts,
            )
        )
        return True

    def _retry_422(self, creq: ClientRequest, response: Response) -> None:
        """Send ``creq``'s refresh again asking for the 422's Min-SE (RFC 4028 §7.4)."""
        interval = self._timers.retry_interval(response) or 0
        old = creq.request
        asked = old.header(SessionExpires)
        refresher = asked.refresher if asked is not None else None
        value = f"{interval};refresher={refresher}" if refresher else str(interval)
        headers = old.headers.with_("Session-Expires", value).with_("Min-SE", str(interval))
        creq.request = attrs.evolve(old, headers=headers)
        creq.final = False
        self._stats["session_422_retries"] += 1
        self._retry(creq)

    # --- time -----------------------------------------------------------------------------

    def on_deadline(self, creq: ClientRequest, now: float) -> ClientRequest | None:
        """A deadline of ``creq`` came (popped from the timeline).

        Returns:
            The request when it was an initial INVITE now finished for good (its call
            leg's INVITE record can go), else None.
        """
        if creq.retry_at is not None and creq in self._retries:
            if creq.retry_at <= now:
                self._retries.remove(creq)
                self._retry(creq)
            return None
        request = creq.request
        key = (request.top_via.branch or "", request.method)
        if self._client.get(key) is creq:
            del self._client[key]
            if not creq.final and not creq.internal:
                # A re-INVITE of an ended dialog never got its answer.
                timeout = make_response(request, 408, "Request Timeout")
                self._out.emit(ResponseForRequest(creq.ref, creq.dialog_id, "INVITE", timeout))
            return creq if creq.leg is not None else None
        if self._completed.get(key) is creq:
            del self._completed[key]
            for did, (held, _) in list(self._held.items()):
                if held is creq:
                    del self._held[did]  # the TU never sent its ACK
            return creq if creq.leg is not None else None
        return None

    def _retry(self, creq: ClientRequest) -> None:
        creq.retry_at = None
        dialog = self._store.get(creq.dialog_id) if creq.dialog_id else None
        old = creq.request
        if dialog is None:
            gone = make_response(old, 481)
            self._out.emit(ResponseForRequest(creq.ref, creq.dialog_id, old.method, gone))
            return
        # The headers the dialog builds itself are made afresh; the TU's extra ones are kept.
        extra = tuple((n, v) for n, v in old.headers if n.lower() not in _REBUILT)
        ctype = old.headers.get("Content-Type")
        if old.method == "INVITE" and self._hooks.invite_in_progress(dialog.id):
            # RFC 3261 §14.1: the peer's INVITE went first and is still in progress: wait.
            tu_headers = tuple((n, v) for n, v in extra if n.lower() not in _LAYER_MADE)
            self.deferred.append(
                DeferredRequest(creq.ref, dialog, old.body, ctype, tu_headers, creq.defer_ack)
            )
            return
        req = dialog.build_request(
            old.method, self._config, self._rng, headers=extra, body=old.body, content_type=ctype
        )
        self.send(
            ClientRequest(
                ref=creq.ref,
                request=req,
                dialog_id=creq.dialog_id,
                refresh=creq.refresh,
                defer_ack=creq.defer_ack,
                dialog=dialog,
            )
        )

    # --- the end of a dialog --------------------------------------------------------------

    def dialog_ended(self, did: DialogId, now: float) -> None:
        """Forget the dialog's waiting retries; give its open re-INVITEs 64*T1 to finish."""
        for creq in self._client.values():
            if creq.dialog_id == did and creq.request.method == "INVITE" and not creq.final:
                # A re-INVITE whose dialog ended: give its answer 64*T1, then report 408.
                creq.expires_at = now + 64 * self._config.t1
                self._timeline.set(creq, creq.expires_at)
        if self._retries:
            for creq in [c for c in self._retries if c.dialog_id == did]:
                self._retries.remove(creq)
                self._timeline.cancel(creq)

    def counts(self) -> Counter[str]:
        """Sizes of the tables (to check nothing leaks after many calls)."""
        return Counter(
            client=len(self._client),
            completed=len(self._completed),
            held_acks=len(self._held),
            retries=len(self._retries),
            deferred=len(self.deferred),
        )
