"""`TransactionLayer`: the sans-IO owner of every transaction of one SIP endpoint.

Bytes and TU calls go in with the current time; transmits and TU events come out through
`take_transmits()` / `take_events()`, and `next_deadline()` says when to call
`handle_timers(now)`. One heap of deadlines serves all transactions (no task per timer).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Hashable, Mapping

import attrs

from rvoip_sip_core import (
    SUPPORTED_URI_SCHEMES,
    Headers,
    Request,
    Response,
    SipError,
    SipParseError,
    check_request,
    make_response,
    new_branch,
    new_tag,
    parse_message,
)

from ._deadlines import Deadlines
from ._matching import (
    MAGIC_COOKIE,
    client_key,
    replace_top_via,
    response_target,
    server_key,
    stamp_via,
    trying_bytes,
    with_method,
)
from ._tables import (
    INVITE_CLIENT,
    INVITE_SERVER,
    NON_INVITE_CLIENT,
    NON_INVITE_SERVER,
    Machine,
    MachineEvent,
    State,
    Timer,
)
from ._transaction import Transaction, event_for_response
from ._types import (
    Peer,
    ResponseReceived,
    TimerConfig,
    TransactionAck,
    TransactionEvent,
    TransactionRequest,
    TransactionTerminated,
    TransactionTimeout,
    TransactionUsageError,
    Transmit,
    TransportFailure,
)

__all__ = ["TransactionLayer"]

logger = logging.getLogger(__name__)

# RFC 3261 §18.1.1: requests larger than this that would go over UDP use TCP instead.
UDP_SIZE_LIMIT = 1300
_RECOVERED_NEEDED = ("via", "from", "to", "call-id", "cseq")


@attrs.define(eq=False, kw_only=True)
class TransactionLayer:
    """All client and server transactions of an endpoint, sans-IO.

    Statistics (``stats``, a Counter) name every message that did not start or advance a
    transaction: ``dropped_too_large``, ``dropped_unparseable``, ``answered_400`` (and
    ``answered_416``, ``answered_505`` ...: a request refused by `check_request` or the
    parser, with a Warning naming the fault), ``rejected_invalid`` (refused by
    `check_request`), ``dropped_invalid_ack`` (an ACK for no transaction that fails
    `check_request`), ``receive_errors`` (an unexpected exception on one message's path:
    counted, logged, answered 400 when a request can be formed, never raised),
    ``dropped_bad_response`` (not exactly one Via, §18.1.2), ``dropped_stray_response``,
    ``dropped_response_sent_by_mismatch`` (§18.1.2),
    ``absorbed_response`` (table says ignore), ``absorbed_request_retransmission``,
    ``absorbed_ack``, ``answered_482_merged``, ``answered_481_cancel``, plus
    ``requests_received``, ``responses_received``, ``transmits``, ``retransmissions``.
    """

    # Branches and the To tags of the layer's own answers go on the wire: the OS CSPRNG
    # by default (RFC 3261 §19.3); a test injects a seeded random.Random.
    rng: random.Random = attrs.field(factory=random.SystemRandom)
    config: TimerConfig = attrs.field(factory=TimerConfig)
    max_message_size: int = 65535
    send_trying: bool = True
    # RFC 3261 §8.2.2.1: Request-URI schemes answered; another one gets 416.
    uri_schemes: frozenset[str] = SUPPORTED_URI_SCHEMES
    stats: Counter[str] = attrs.field(factory=Counter, init=False)
    _local: dict[str, tuple[str, int]] = attrs.field(factory=dict, init=False)
    _by_id: dict[int, Transaction] = attrs.field(factory=dict, init=False)
    _clients: dict[Hashable, Transaction] = attrs.field(factory=dict, init=False)
    _servers: dict[Hashable, Transaction] = attrs.field(factory=dict, init=False)
    _merge: dict[Hashable, Transaction] = attrs.field(factory=dict, init=False)
    deadlines: Deadlines[tuple[Transaction, Timer]] = attrs.field(factory=Deadlines, init=False)
    """The running timers of every transaction, keyed ``(transaction, timer)``."""
    _transmits: list[Transmit] = attrs.field(factory=list, init=False)
    _events: list[TransactionEvent] = attrs.field(factory=list, init=False)
    _next_id: int = attrs.field(default=1, init=False)

    # ------------------------------------------------------------------ set-up / output

    def set_local(self, transport: str, host: str, port: int) -> None:
        """Record the sent-by for Vias this layer adds on ``transport`` (e.g. "UDP")."""
        self._local[transport.upper()] = (host, port)

    def next_deadline(self) -> float | None:
        """The earliest pending timer deadline."""
        return self.deadlines.next()

    def take_transmits(self) -> list[Transmit]:
        """Return and clear the bytes to send."""
        out, self._transmits = self._transmits, []
        return out

    def take_output(self) -> tuple[list[Transmit], list[TransactionEvent]]:
        """Return and clear both outputs at once: the bytes to send and the TU's events.

        One call per flush round for the driver's hot path (instead of two, or of reaching
        into the lists); an empty list is handed out as is, so do not keep or fill it.
        """
        transmits, events = self._transmits, self._events
        if transmits:
            self._transmits = []
        if events:
            self._events = []
        return transmits, events

    def take_events(self) -> list[TransactionEvent]:
        """Return and clear the events for the TU."""
        out, self._events = self._events, []
        return out

    def state(self, txn_id: int) -> State | None:
        """The state of a live transaction, None once it terminated."""
        txn = self._by_id.get(txn_id)
        return None if txn is None else txn.state

    def request_of(self, txn_id: int) -> Request | None:
        """The request of a transaction (as sent / as received with received/rport).

        None once it is terminated or past its final response (Completed, Confirmed,
        Accepted): the layer then keeps only the bytes it may have to retransmit.
        """
        txn = self._by_id.get(txn_id)
        return None if txn is None else txn.request

    def has_server_transaction(self, branch: str, host: str, port: int | None, method: str) -> bool:
        """Whether a live server transaction matches this top-Via branch and sent-by.

        RFC 3261 §17.2.3 (magic-cookie branches only): what overload control asks before
        refusing a request, so a retransmission reaches its transaction instead.
        """
        return (branch, host.lower(), port, method) in self._servers

    def __len__(self) -> int:
        return len(self._by_id)

    # ------------------------------------------------------------------ timers

    def handle_timers(self, now: float) -> None:
        """Fire every timer whose deadline is at or before ``now``."""
        # A timer may arm another one already due (e.g. Timer G re-armed late): repeat.
        pop_due = self.deadlines.pop_due
        due = pop_due(now)
        while due:
            for txn, timer in due:
                txn.fire(timer, now)
            due = pop_due(now)

    # ------------------------------------------------------------------ client side

    def send_request(self, request: Request, target: Peer, now: float) -> int:
        """Start a client transaction for ``request`` towards ``target``; return its id.

        Adds a Via (with a fresh branch and ``rport``) when the request has none.

        Raises:
            TransactionUsageError: ACK (use `send_stateless`), no local address for the
                transport, a branch without the magic cookie, or a branch already in use.
        """
        if request.method == "ACK":
            raise TransactionUsageError("ACK is not a transaction: use send_stateless")
        added_via = "via" not in request.headers
        if added_via:
            request = self._with_via(request, target.transport)
        data = request.encode()
        if target.transport == "UDP" and len(data) > UDP_SIZE_LIMIT and "TCP" in self._local:
            # RFC 3261 §18.1.1: a request over 1300 bytes goes over a congestion-controlled
            # transport; the top Via's transport changes with it.
            target = Peer("TCP", target.host, target.port)
            via = request.top_via
            host, port = self._local["TCP"]
            new = replace_top_via(request, attrs.evolve(via, transport="TCP", host=host, port=port))
            assert isinstance(new, Request)
            request = new
            data = request.encode()
            self.stats["udp_to_tcp"] += 1
        branch = request.top_via.branch
        if branch is None or not branch.startswith(MAGIC_COOKIE):
            raise TransactionUsageError("client transactions need a z9hG4bK branch")
        key = client_key(branch, request.method)
        if key in self._clients:
            raise TransactionUsageError(f"branch {branch} is already in use for {request.method}")
        machine = INVITE_CLIENT if request.method == "INVITE" else NON_INVITE_CLIENT
        txn = self._new(machine, request, target, key)
        txn.request_bytes = data
        sent_host, sent_port = request.top_via.sent_by
        txn.sent_by = (sent_host.lower(), sent_port)
        self._clients[key] = txn
        txn.start(now)
        return txn.id

    def send_stateless(self, message: Request | Response, target: Peer, now: float) -> None:
        """Send a message outside any transaction (the ACK for a 2xx, a stateless reply)."""
        if isinstance(message, Request) and "via" not in message.headers:
            message = self._with_via(message, target.transport)
        self._transmit(message.encode(), target, None)

    def _with_via(self, request: Request, transport: str) -> Request:
        local = self._local.get(transport)
        if local is None:
            raise TransactionUsageError(f"no local address for {transport}: call set_local")
        host, port = local
        shown = f"[{host}]" if ":" in host else host
        branch = new_branch(self.rng)
        return request.prepend_header(
            "Via", f"SIP/2.0/{transport} {shown}:{port};branch={branch};rport"
        )

    # ------------------------------------------------------------------ server side

    def respond(self, txn_id: int, response: Response, now: float) -> None:
        """Pass the TU's response to server transaction ``txn_id`` (sends it).

        Raises:
            TransactionUsageError: unknown or terminated id, a client transaction, or a
                response the state does not accept.
        """
        txn = self._by_id.get(txn_id)
        if txn is None or txn.is_client:
            raise TransactionUsageError(f"no server transaction {txn_id}")
        status = response.status
        event = (
            MachineEvent.TU_1XX
            if status < 200
            else MachineEvent.TU_2XX
            if status < 300
            else MachineEvent.TU_FINAL
        )
        if (txn.state, event) not in txn.machine.table:
            raise TransactionUsageError(
                f"{txn.machine.name} transaction in state {txn.state.value} cannot send a {status}"
            )
        txn.response_bytes = response.encode()
        if txn.trying_owed:
            # A response from the TU: the deferred 100 Trying is no longer owed.
            txn.trying_owed = False
            txn.disarm(Timer.TRYING)
        key = txn.key
        if status >= 200 and isinstance(key, tuple) and key[0] == "2543":
            # kept for the RFC 2543 ACK match (§17.2.3); a branch match needs no To tag
            txn.to_tag = response.to.tag
        txn.step(event, now)

    # ------------------------------------------------------------------ input

    def receive(self, data: bytes, source: Peer, now: float) -> None:
        """Feed one datagram or one framed stream message."""
        if len(data) > self.max_message_size:
            self.stats["dropped_too_large"] += 1
            return
        try:
            message = parse_message(data)
        except SipParseError as exc:
            if not data.strip(b"\r\n"):
                # RFC 5626 §3.5.1 practice: a CRLF(CRLF) datagram is a peer's NAT
                # keep-alive, not a broken message; counted apart and not answered (over
                # UDP there is no pong). Only on the parse-error path: no hot-path cost.
                self.stats["keepalives_received"] += 1
                return
            self._bad_input(exc, source)
            return
        except Exception:
            # No input may end the caller (a listener, a task group): a parser bug is
            # counted and logged, the datagram dropped.
            self.stats["receive_errors"] += 1
            logger.exception("parsing a message from %s:%s failed", source.host, source.port)
            return
        # hot path: receive_message's body, inlined (one frame less per datagram)
        try:
            if isinstance(message, Request):
                self._on_request(message, source, now)
            else:
                self._on_response(message, source, now)
        except SipParseError as exc:
            self._bad_message(exc, message, source)
        except Exception:
            self._internal_error(message, source)

    def receive_message(self, message: Request | Response, source: Peer, now: float) -> None:
        """Feed one parsed message (e.g. from a stream framer)."""
        try:
            if isinstance(message, Request):
                self._on_request(message, source, now)
            else:
                self._on_response(message, source, now)
        except SipParseError as exc:
            self._bad_message(exc, message, source)
        except Exception:
            self._internal_error(message, source)

    def reject_stream_message(self, head: bytes, source: Peer, status: int, reason: str) -> None:
        """Answer a stream message the framer refused, from its first bytes.

        RFC 3261 §18.3 / §21.4.11: a body over the limit gets 413 (a missing or invalid
        Content-Length 400) when the header section shows a request that is not an ACK
        with a Via and a CSeq; the transport then closes the connection.
        """
        end = head.find(b"\r\n\r\n")
        section = head[:end] if end >= 0 else head
        try:
            message = parse_message(section + b"\r\n\r\n")
        except SipParseError as exc:
            rec, is_request = exc.recovered, exc.is_request
        except Exception:
            self.stats["dropped_unparseable"] += 1
            return
        else:
            rec, is_request = _raw_fields(message), isinstance(message, Request)
        cseq = rec.get("cseq", "")
        if is_request is not True or not cseq or cseq.rstrip().upper().endswith("ACK"):
            self.stats["dropped_unparseable"] += 1
            return
        phrase = "Request Entity Too Large" if status == 413 else reason
        self._answer_fault(rec, source, status, phrase, reason)

    def _internal_error(self, message: Request | Response, source: Peer) -> None:
        """An unexpected exception on one message's path: count, log, answer 400, go on.

        Rule (issue 10): no input from the network can end a listener, a task group or
        the process. The request is answered 400 when a response can be formed.
        """
        self.stats["receive_errors"] += 1
        logger.exception("handling a message from %s:%s failed", source.host, source.port)
        try:
            self._bad_message(SipParseError("Bad Request"), message, source)
        except Exception:
            logger.exception("answering a failed message with 400 failed")

    def _bad_message(self, exc: SipParseError, message: Request | Response, source: Peer) -> None:
        """A mandatory header is missing or malformed (typed lazily on access)."""
        if not isinstance(message, Request) or message.method == "ACK":
            # RFC 3261 §17.2.3 / §18.1.2: no response to a response or to an ACK.
            self.stats["dropped_unparseable"] += 1
            return
        reason = " ".join(exc.reason.split())[:120] or "Bad Request"
        status = exc.status if 400 <= exc.status < 700 else 400
        self._answer_fault(_raw_fields(message), source, status, reason, reason)

    def _reject(self, request: Request, source: Peer, status: int, reason: str, fault: str) -> None:
        """RFC 3261 §8.2: answer a request that failed `check_request`, statelessly."""
        self.stats["rejected_invalid"] += 1
        self._answer_fault(_raw_fields(request), source, status, reason, fault)

    def transport_failed(self, txn_id: int, reason: str, now: float) -> None:
        """The transport could not deliver for ``txn_id`` (RFC 3261 §17.1.4, §17.2.4)."""
        txn = self._by_id.get(txn_id)
        if txn is None:
            self.stats["transport_error_no_transaction"] += 1
            return
        self.stats["transport_errors"] += 1
        txn.failure_reason = reason
        txn.step(MachineEvent.TRANSPORT_ERROR, now)

    def _on_response(self, response: Response, source: Peer, now: float) -> None:
        self.stats["responses_received"] += 1
        vias = response.vias
        if len(vias) != 1:
            # RFC 3261 §18.1.2: a response with more than one Via is discarded.
            self.stats["dropped_bad_response"] += 1
            return
        branch = vias[0].branch
        txn = self._clients.get(client_key(branch or "", response.cseq.method))
        if txn is None:
            self.stats["dropped_stray_response"] += 1
            return
        host, port = vias[0].sent_by
        if (host.lower(), port) != txn.sent_by:
            # RFC 3261 §18.1.2: a response whose sent-by is not ours is discarded.
            self.stats["dropped_response_sent_by_mismatch"] += 1
            return
        event = event_for_response(response.status)
        if not txn.allows(event):
            self.stats["absorbed_response"] += 1
            return
        txn.step(event, now, response, source)

    def _on_request(self, request: Request, source: Peer, now: float) -> None:
        # hot path: every request of every call comes through here; the common
        # (magic-cookie branch, no stamping) case is inlined.
        self.stats["requests_received"] += 1
        method = request.method
        via = request.top_via
        cseq = request.cseq
        if cseq.method != method:
            raise SipParseError("CSeq method does not match the request method")
        branch = via.branch
        if branch is not None and branch.startswith(MAGIC_COOKIE):
            # RFC 3261 §17.2.3: branch + sent-by + method (ACK folded onto its INVITE).
            key: Hashable = (
                branch,
                via.host.lower(),
                via.port,
                "INVITE" if method == "ACK" else method,
            )
        else:
            key = server_key(request, via, method)
        if via.host != source.host or via.rport is True:
            stamped = stamp_via(request, via, source)
            if stamped is not request:
                request = stamped
                via = request.top_via
        txn = self._servers.get(key)
        if method == "ACK":
            self._on_ack(request, source, now, txn)
            return
        if txn is not None:
            self.stats["absorbed_request_retransmission"] += 1
            txn.step(MachineEvent.RECV_REQUEST, now, request, source)
            return
        # RFC 3261 §8.2: validate before acting, for every new server transaction.
        fault = check_request(request, schemes=self.uri_schemes)
        if fault is not None:
            self._reject(request, source, fault.status, fault.reason, fault.warning)
            return
        merge_key: Hashable | None = None
        if request.to.tag is None:
            # RFC 3261 §8.2.2.2: same From tag, Call-ID and CSeq as a live transaction but
            # another branch: a merged (forked then re-converged) request gets 482.
            merge_key = (request.from_.tag, request.call_id, cseq.seq, method)
            if merge_key in self._merge:
                self.stats["answered_482_merged"] += 1
                self._auto_answer(request, source, key, 482, now)
                return
        cancels: int | None = None
        if method == "CANCEL":
            invite = self._servers.get(with_method(key, "INVITE"))
            if invite is None:
                # RFC 3261 §9.2: a CANCEL matching no transaction is answered 481.
                self.stats["answered_481_cancel"] += 1
                self._auto_answer(request, source, key, 481, now)
                return
            cancels = invite.id
        invite_txn = method == "INVITE"
        txn = self._new(INVITE_SERVER if invite_txn else NON_INVITE_SERVER, request, source, key)
        txn.response_target = response_target(via, source)
        txn.cancels = cancels
        self._servers[key] = txn
        if merge_key is not None:
            txn.merge_key = merge_key
            self._merge[merge_key] = txn
        txn.start(now)
        if invite_txn and self.send_trying and txn.state is State.PROCEEDING:
            delay = self.config.trying_after
            if delay:
                # RFC 3261 §17.2.1: the 100 may be skipped if the TU answers within 200 ms:
                # it is sent by Timer 100 (or on a retransmission) if no response came yet.
                txn.trying_owed = True
                txn.arm(Timer.TRYING, now + delay)
            else:
                # RFC 3261 §17.2.1: the INVITE server transaction answers 100 Trying itself
                # (built as bytes: the TU never sees it).
                txn.response_bytes = trying_bytes(request)
                txn.step(MachineEvent.TU_1XX, now)

    def _on_ack(self, request: Request, source: Peer, now: float, txn: Transaction | None) -> None:
        if txn is not None and txn.machine is INVITE_SERVER:
            key = txn.key
            rfc2543 = isinstance(key, tuple) and key[0] == "2543"
            if rfc2543 and request.to.tag != txn.to_tag:
                # RFC 3261 §17.2.3: a 2543 ACK matches only with the To tag of our response.
                txn = None
        if txn is None or txn.machine is not INVITE_SERVER:
            if check_request(request, schemes=self.uri_schemes) is not None:
                # RFC 3261 §17.1.1.3 / §8.2: an ACK is never answered; an invalid one
                # that matches no transaction is dropped, not passed to the TU.
                self.stats["dropped_invalid_ack"] += 1
                return
            # RFC 6026 §7.1: the ACK for a 2xx (new branch) goes straight to the TU.
            self._events.append(TransactionAck(request, source, None))
            return
        if txn.allows(MachineEvent.RECV_ACK):
            txn.step(MachineEvent.RECV_ACK, now, request, source)
        else:
            self.stats["absorbed_ack"] += 1

    def _auto_answer(
        self, request: Request, source: Peer, key: Hashable, status: int, now: float
    ) -> None:
        """Answer a request from the layer itself, through a server transaction of its own."""
        machine = INVITE_SERVER if request.method == "INVITE" else NON_INVITE_SERVER
        txn = self._new(machine, request, source, key)
        txn.response_target = response_target(request.top_via, source)
        self._servers[key] = txn
        self.respond(txn.id, make_response(request, status, to_tag=new_tag(self.rng)), now)

    def _bad_input(self, exc: SipParseError, source: Peer) -> None:
        """RFC 3261 §8.2 / §16.3: answer 400 when we can build a response, else drop.

        The message did not parse: it is answered only when it was a request (not an
        ACK, told by its CSeq) whose Via and CSeq could be read.
        """
        rec = exc.recovered
        cseq = rec.get("cseq", "")
        if exc.is_request is not True or not cseq or cseq.rstrip().upper().endswith("ACK"):
            self.stats["dropped_unparseable"] += 1
            return
        reason = " ".join(exc.reason.split())[:120] or "Bad Request"
        status = exc.status if 400 <= exc.status < 700 else 400
        self._answer_fault(rec, source, status, reason, reason)

    def _answer_fault(
        self, rec: Mapping[str, str], source: Peer, status: int, reason: str, fault: str
    ) -> None:
        """Send a stateless error response built from a request's raw header values.

        RFC 3261 §8.2.6.2: the response copies Via, From, To (adding a tag), Call-ID and
        CSeq; those missing from the request are left out (e.g. RFC 4475 `insuf`), but
        without a Via there is nowhere to send it. RFC 3261 §20.43: ``Warning: 399``
        names the fault for a human.
        """
        via = rec.get("via")
        if not via:
            self.stats["dropped_unparseable"] += 1
            return
        items: list[tuple[str, object]] = [("Via", via)]
        if "from" in rec:
            items.append(("From", rec["from"]))
        to = rec.get("to")
        if to is not None:
            if ";tag=" not in to.replace(" ", "").lower():
                to = f"{to};tag={new_tag(self.rng)}"
            items.append(("To", to))
        if "call-id" in rec:
            items.append(("Call-ID", rec["call-id"]))
        if "cseq" in rec:
            items.append(("CSeq", rec["cseq"]))
        local = self._local.get(source.transport)
        agent = "rvoip" if local is None else _hostport(*local)
        items.append(("Warning", f'399 {agent} "{_quoted_text(fault)}"'))
        try:
            data = Response(status, _quoted_text(reason), Headers(items)).encode()
        except (ValueError, SipError):
            self.stats["dropped_unparseable"] += 1
            return
        self.stats[f"answered_{status}"] += 1
        self._transmit(data, source, None)

    # ------------------------------------------------------------------ the Owner protocol

    def _new(self, machine: Machine, request: Request, peer: Peer, key: Hashable) -> Transaction:
        txn_id = self._next_id
        self._next_id += 1
        txn = Transaction(
            id=txn_id,
            machine=machine,
            request=request,
            peer=peer,
            key=key,
            owner=self,
            config=self.config,
            state=machine.initial,
        )
        self._by_id[txn_id] = txn
        return txn

    def _transmit(self, data: bytes, target: Peer, txn: Transaction | None) -> None:
        self.stats["transmits"] += 1
        self._transmits.append(Transmit(data, target, None if txn is None else txn.id))

    def _deliver(self, txn: Transaction, message: Request | Response, source: Peer) -> None:
        if isinstance(message, Response):
            self._events.append(ResponseReceived(txn.id, message, source))
        elif message.method == "ACK":
            self._events.append(TransactionAck(message, source, txn.id))
        else:
            self._events.append(TransactionRequest(txn.id, message, source, txn.cancels))

    def _timeout(self, txn: Transaction, timer: Timer) -> None:
        self.stats[f"timeout_{timer.value}"] += 1
        self._events.append(TransactionTimeout(txn.id, timer.value))

    def _transport_error(self, txn: Transaction, reason: str) -> None:
        self._events.append(TransportFailure(txn.id, reason))

    def _build_ack(self, txn: Transaction, response: Response) -> bytes:
        # RFC 3261 §17.1.1.3: same Request-URI, Call-ID, From, CSeq number and top Via as
        # the INVITE, the To of the response, the INVITE's Route headers.
        req = txn.request
        assert req is not None  # the ACK is built on entering Completed, before compaction
        items: list[tuple[str, object]] = [("Via", str(req.top_via))]
        items.extend(("Route", value) for value in req.headers.get_all("route"))
        items += [
            ("Max-Forwards", "70"),
            ("From", req.headers.get("from") or ""),
            ("To", response.headers.get("to") or ""),
            ("Call-ID", req.call_id),
            ("CSeq", f"{req.cseq.seq} ACK"),
        ]
        return Request("ACK", req.uri_text, Headers(items)).encode()

    def _terminated(self, txn: Transaction) -> None:
        self._by_id.pop(txn.id, None)
        table = self._clients if txn.is_client else self._servers
        if table.get(txn.key) is txn:
            del table[txn.key]
        if txn.merge_key is not None and self._merge.get(txn.merge_key) is txn:
            del self._merge[txn.merge_key]
        self._events.append(TransactionTerminated(txn.id))


def _raw_fields(message: Request | Response) -> dict[str, str]:
    """The raw Via (every line), From, To, Call-ID and CSeq values of ``message``."""
    headers = message.headers
    return {
        key: ", ".join(values) if key == "via" else values[0]
        for key in _RECOVERED_NEEDED
        if (values := headers.get_all(key))
    }


def _quoted_text(text: str) -> str:
    """``text`` made safe inside a quoted-string or a reason phrase (no quotes, controls)."""
    return "".join(c if c.isprintable() and c not in '"\\' else "?" for c in text)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
