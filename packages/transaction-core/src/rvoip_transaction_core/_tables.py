"""The four RFC 3261 §17 transaction machines as data: (state, event) -> (state, actions).

The machines in ``_transaction.py`` interpret these tables and ``tools/diagrams.py`` draws
them, so the docs and the behaviour come from one source. RFC 6026 adds the Accepted state
to both INVITE machines (2xx retransmissions absorbed / passed to the TU, Timers L and M).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs


class State(enum.Enum):
    """A transaction state (RFC 3261 figures 5-8, RFC 6026 figures 5 and 7)."""

    # Members are singletons: identity hashing is correct and skips Enum's Python __hash__
    # on the hot path (table and timer lookups).
    __hash__ = object.__hash__

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class Timer(enum.Enum):
    """The RFC 3261 timers (table 4) plus RFC 6026's L and M."""

    # Members are singletons: identity hashing is correct and skips Enum's Python __hash__
    # on the hot path (table and timer lookups).
    __hash__ = object.__hash__

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741 - the RFC's name
    J = "J"
    K = "K"
    L = "L"
    M = "M"
    #: Not an RFC timer: the delayed 100 Trying of an INVITE server transaction
    #: (``TimerConfig.trying_after``; RFC 3261 §17.2.1's 200 ms allowance).
    TRYING = "100"


class MachineEvent(enum.Enum):
    """An input to a machine: a message class, a TU call, a timer or a transport error."""

    # Members are singletons: identity hashing is correct and skips Enum's Python __hash__
    # on the hot path (table and timer lookups).
    __hash__ = object.__hash__

    # client side inputs
    RECV_1XX = "1xx"
    RECV_2XX = "2xx"
    RECV_FINAL = "300-699"
    # server side inputs
    RECV_REQUEST = "request"
    RECV_ACK = "ACK"
    TU_1XX = "TU 1xx"
    TU_2XX = "TU 2xx"
    TU_FINAL = "TU 300-699"
    # both
    TRANSPORT_ERROR = "transport error"
    TIMER_A = "Timer A"
    TIMER_B = "Timer B"
    TIMER_C = "Timer C"
    TIMER_D = "Timer D"
    TIMER_E = "Timer E"
    TIMER_F = "Timer F"
    TIMER_G = "Timer G"
    TIMER_H = "Timer H"
    TIMER_I = "Timer I"
    TIMER_J = "Timer J"
    TIMER_K = "Timer K"
    TIMER_L = "Timer L"
    TIMER_M = "Timer M"
    TIMER_TRYING = "Timer 100"


TIMER_EVENT: Mapping[Timer, MachineEvent] = {t: MachineEvent["TIMER_" + t.name] for t in Timer}


class MachineAction(enum.Enum):
    """What a transition does; the interpreter in ``_transaction.py`` performs it."""

    # Members are singletons: identity hashing is correct and skips Enum's Python __hash__
    # on the hot path (table and timer lookups).
    __hash__ = object.__hash__

    SEND_REQUEST = "send request"
    SEND_RESPONSE = "send response"
    SEND_ACK = "send ACK"
    SEND_TRYING = "send 100 if deferred and no response yet"
    DELIVER = "to TU"
    TIMEOUT = "timeout to TU"
    TRANSPORT_ERROR = "transport error to TU"
    ARM_A = "start A"
    BACKOFF_A = "A x2"
    ARM_B = "start B"
    ARM_C = "(re)start C"
    ARM_D = "start D"
    ARM_E = "start E"
    BACKOFF_E = "E=min(2E,T2)"
    E_AT_T2 = "E=T2"
    ARM_F = "start F"
    ARM_G = "start G"
    BACKOFF_G = "G=min(2G,T2)"
    ARM_H = "start H"
    ARM_I = "start I"
    ARM_J = "start J"
    ARM_K = "start K"
    ARM_L = "start L"
    ARM_M = "start M"


Table = Mapping[tuple[State, MachineEvent], tuple[State, tuple[MachineAction, ...]]]


@attrs.frozen
class Machine:
    """One machine: its transition table, start, and the timers allowed to run per state.

    Entering a state cancels every running timer not in ``timers[state]`` (so e.g. Timer F
    keeps running from Trying into Proceeding while Timer A stops at Proceeding).
    """

    name: str
    initial: State
    start_actions: tuple[MachineAction, ...]
    table: Table
    timers: Mapping[State, frozenset[Timer]]
    events: frozenset[MachineEvent]


S, E, A = State, MachineEvent, MachineAction
_TERM: tuple[MachineAction, ...] = ()

# RFC 3261 §17.1.1.2 (figure 5) with RFC 6026 §8.4 (Accepted, Timer M).
INVITE_CLIENT = Machine(
    name="INVITE client",
    initial=S.CALLING,
    start_actions=(A.SEND_REQUEST, A.ARM_A, A.ARM_B),
    table={
        (S.CALLING, E.TIMER_A): (S.CALLING, (A.SEND_REQUEST, A.BACKOFF_A)),
        (S.CALLING, E.TIMER_B): (S.TERMINATED, (A.TIMEOUT,)),
        # RFC 3261 §16.6/§16.8 Timer C (> 3 min, reset by each provisional): without it an
        # INVITE whose final response is lost after a 1xx would wait for ever.
        (S.CALLING, E.RECV_1XX): (S.PROCEEDING, (A.DELIVER, A.ARM_C)),
        (S.CALLING, E.RECV_2XX): (S.ACCEPTED, (A.DELIVER, A.ARM_M)),
        (S.CALLING, E.RECV_FINAL): (S.COMPLETED, (A.SEND_ACK, A.DELIVER, A.ARM_D)),
        (S.CALLING, E.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
        (S.PROCEEDING, E.RECV_1XX): (S.PROCEEDING, (A.DELIVER, A.ARM_C)),
        (S.PROCEEDING, E.TIMER_C): (S.TERMINATED, (A.TIMEOUT,)),
        (S.PROCEEDING, E.RECV_2XX): (S.ACCEPTED, (A.DELIVER, A.ARM_M)),
        (S.PROCEEDING, E.RECV_FINAL): (S.COMPLETED, (A.SEND_ACK, A.DELIVER, A.ARM_D)),
        (S.PROCEEDING, E.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
        # RFC 3261 §17.1.1.2: retransmitted finals in Completed get the ACK again.
        (S.COMPLETED, E.RECV_FINAL): (S.COMPLETED, (A.SEND_ACK,)),
        (S.COMPLETED, E.RECV_1XX): (S.COMPLETED, ()),
        (S.COMPLETED, E.RECV_2XX): (S.COMPLETED, ()),
        (S.COMPLETED, E.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
        (S.COMPLETED, E.TIMER_D): (S.TERMINATED, _TERM),
        # RFC 6026 §8.4: in Accepted every 2xx goes to the TU; others are absorbed.
        (S.ACCEPTED, E.RECV_2XX): (S.ACCEPTED, (A.DELIVER,)),
        (S.ACCEPTED, E.RECV_1XX): (S.ACCEPTED, ()),
        (S.ACCEPTED, E.RECV_FINAL): (S.ACCEPTED, ()),
        (S.ACCEPTED, E.TRANSPORT_ERROR): (S.ACCEPTED, ()),
        (S.ACCEPTED, E.TIMER_M): (S.TERMINATED, _TERM),
    },
    timers={
        S.CALLING: frozenset({Timer.A, Timer.B}),
        S.PROCEEDING: frozenset({Timer.C}),
        S.COMPLETED: frozenset({Timer.D}),
        S.ACCEPTED: frozenset({Timer.M}),
        S.TERMINATED: frozenset(),
    },
    events=frozenset(
        {E.RECV_1XX, E.RECV_2XX, E.RECV_FINAL, E.TRANSPORT_ERROR}
        | {E.TIMER_A, E.TIMER_B, E.TIMER_C, E.TIMER_D, E.TIMER_M}
    ),
)

# RFC 3261 §17.1.2.2 (figure 6).
NON_INVITE_CLIENT = Machine(
    name="non-INVITE client",
    initial=S.TRYING,
    start_actions=(A.SEND_REQUEST, A.ARM_E, A.ARM_F),
    table={
        (S.TRYING, E.TIMER_E): (S.TRYING, (A.SEND_REQUEST, A.BACKOFF_E)),
        (S.TRYING, E.TIMER_F): (S.TERMINATED, (A.TIMEOUT,)),
        (S.TRYING, E.RECV_1XX): (S.PROCEEDING, (A.DELIVER,)),
        (S.TRYING, E.RECV_2XX): (S.COMPLETED, (A.DELIVER, A.ARM_K)),
        (S.TRYING, E.RECV_FINAL): (S.COMPLETED, (A.DELIVER, A.ARM_K)),
        (S.TRYING, E.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
        # RFC 3261 §17.1.2.2: in Proceeding Timer E is reset to T2.
        (S.PROCEEDING, E.TIMER_E): (S.PROCEEDING, (A.SEND_REQUEST, A.E_AT_T2)),
        (S.PROCEEDING, E.TIMER_F): (S.TERMINATED, (A.TIMEOUT,)),
        (S.PROCEEDING, E.RECV_1XX): (S.PROCEEDING, (A.DELIVER,)),
        (S.PROCEEDING, E.RECV_2XX): (S.COMPLETED, (A.DELIVER, A.ARM_K)),
        (S.PROCEEDING, E.RECV_FINAL): (S.COMPLETED, (A.DELIVER, A.ARM_K)),
        (S.PROCEEDING, E.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
        # Completed buffers response retransmissions (absorbed).
        (S.COMPLETED, E.RECV_1XX): (S.COMPLETED, ()),
        (S.COMPLETED, E.RECV_2XX): (S.COMPLETED, ()),
        (S.COMPLETED, E.RECV_FINAL): (S.COMPLETED, ()),
        (S.COMPLETED, E.TRANSPORT_ERROR): (S.COMPLETED, ()),
        (S.COMPLETED, E.TIMER_K): (S.TERMINATED, _TERM),
    },
    timers={
        S.TRYING: frozenset({Timer.E, Timer.F}),
        S.PROCEEDING: frozenset({Timer.E, Timer.F}),
        S.COMPLETED: frozenset({Timer.K}),
        S.TERMINATED: frozenset(),
    },
    events=frozenset(
        {E.RECV_1XX, E.RECV_2XX, E.RECV_FINAL, E.TRANSPORT_ERROR}
        | {E.TIMER_E, E.TIMER_F, E.TIMER_K}
    ),
)

# RFC 3261 §17.2.1 (figure 7) with RFC 6026 §7.1 (Accepted, Timer L).
INVITE_SERVER = Machine(
    name="INVITE server",
    initial=S.PROCEEDING,
    start_actions=(A.DELIVER,),
    table={
        # RFC 3261 §17.2.1: a retransmitted INVITE gets the last provisional again; with
        # the 100 deferred (TimerConfig.trying_after) and no response yet, the 100 at once.
        (S.PROCEEDING, E.RECV_REQUEST): (S.PROCEEDING, (A.SEND_RESPONSE, A.SEND_TRYING)),
        (S.PROCEEDING, E.TIMER_TRYING): (S.PROCEEDING, (A.SEND_TRYING,)),
        (S.PROCEEDING, E.RECV_ACK): (S.PROCEEDING, ()),  # no final sent yet: stray ACK
        (S.PROCEEDING, E.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
        (S.PROCEEDING, E.TU_2XX): (S.ACCEPTED, (A.SEND_RESPONSE, A.ARM_L)),
        (S.PROCEEDING, E.TU_FINAL): (S.COMPLETED, (A.SEND_RESPONSE, A.ARM_G, A.ARM_H)),
        (S.PROCEEDING, E.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
        (S.COMPLETED, E.RECV_REQUEST): (S.COMPLETED, (A.SEND_RESPONSE,)),
        (S.COMPLETED, E.TIMER_G): (S.COMPLETED, (A.SEND_RESPONSE, A.BACKOFF_G)),
        (S.COMPLETED, E.TIMER_H): (S.TERMINATED, (A.TIMEOUT,)),
        (S.COMPLETED, E.RECV_ACK): (S.CONFIRMED, (A.ARM_I,)),
        (S.COMPLETED, E.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
        (S.CONFIRMED, E.RECV_REQUEST): (S.CONFIRMED, ()),
        (S.CONFIRMED, E.RECV_ACK): (S.CONFIRMED, ()),
        (S.CONFIRMED, E.TRANSPORT_ERROR): (S.CONFIRMED, ()),
        (S.CONFIRMED, E.TIMER_I): (S.TERMINATED, _TERM),
        # RFC 6026 §7.1: INVITE retransmissions absorbed, ACKs to the TU, 2xx from TU sent.
        (S.ACCEPTED, E.RECV_REQUEST): (S.ACCEPTED, ()),
        (S.ACCEPTED, E.RECV_ACK): (S.ACCEPTED, (A.DELIVER,)),
        (S.ACCEPTED, E.TU_2XX): (S.ACCEPTED, (A.SEND_RESPONSE,)),
        (S.ACCEPTED, E.TRANSPORT_ERROR): (S.ACCEPTED, (A.TRANSPORT_ERROR,)),
        (S.ACCEPTED, E.TIMER_L): (S.TERMINATED, _TERM),
    },
    timers={
        S.PROCEEDING: frozenset({Timer.TRYING}),
        S.COMPLETED: frozenset({Timer.G, Timer.H}),
        S.CONFIRMED: frozenset({Timer.I}),
        S.ACCEPTED: frozenset({Timer.L}),
        S.TERMINATED: frozenset(),
    },
    events=frozenset(
        {E.RECV_REQUEST, E.RECV_ACK, E.TU_1XX, E.TU_2XX, E.TU_FINAL, E.TRANSPORT_ERROR}
        | {E.TIMER_G, E.TIMER_H, E.TIMER_I, E.TIMER_L, E.TIMER_TRYING}
    ),
)

# RFC 3261 §17.2.2 (figure 8).
NON_INVITE_SERVER = Machine(
    name="non-INVITE server",
    initial=S.TRYING,
    start_actions=(A.DELIVER,),
    table={
        (S.TRYING, E.RECV_REQUEST): (S.TRYING, ()),
        (S.TRYING, E.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
        (S.TRYING, E.TU_2XX): (S.COMPLETED, (A.SEND_RESPONSE, A.ARM_J)),
        (S.TRYING, E.TU_FINAL): (S.COMPLETED, (A.SEND_RESPONSE, A.ARM_J)),
        (S.TRYING, E.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
        (S.PROCEEDING, E.RECV_REQUEST): (S.PROCEEDING, (A.SEND_RESPONSE,)),
        (S.PROCEEDING, E.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
        (S.PROCEEDING, E.TU_2XX): (S.COMPLETED, (A.SEND_RESPONSE, A.ARM_J)),
        (S.PROCEEDING, E.TU_FINAL): (S.COMPLETED, (A.SEND_RESPONSE, A.ARM_J)),
        (S.PROCEEDING, E.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
        # RFC 3261 §17.2.2: in Completed a retransmitted request gets the final again.
        (S.COMPLETED, E.RECV_REQUEST): (S.COMPLETED, (A.SEND_RESPONSE,)),
        (S.COMPLETED, E.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
        (S.COMPLETED, E.TIMER_J): (S.TERMINATED, _TERM),
    },
    timers={
        S.TRYING: frozenset(),
        S.PROCEEDING: frozenset(),
        S.COMPLETED: frozenset({Timer.J}),
        S.TERMINATED: frozenset(),
    },
    events=frozenset(
        {E.RECV_REQUEST, E.TU_1XX, E.TU_2XX, E.TU_FINAL, E.TRANSPORT_ERROR, E.TIMER_J}
    ),
)

MACHINES: tuple[Machine, ...] = (INVITE_CLIENT, NON_INVITE_CLIENT, INVITE_SERVER, NON_INVITE_SERVER)

# Timers that an action starts, used by the interpreter.
ARMS: Mapping[MachineAction, Timer] = {
    A.ARM_A: Timer.A,
    A.BACKOFF_A: Timer.A,
    A.ARM_B: Timer.B,
    A.ARM_C: Timer.C,
    A.ARM_D: Timer.D,
    A.ARM_E: Timer.E,
    A.BACKOFF_E: Timer.E,
    A.E_AT_T2: Timer.E,
    A.ARM_F: Timer.F,
    A.ARM_G: Timer.G,
    A.BACKOFF_G: Timer.G,
    A.ARM_H: Timer.H,
    A.ARM_I: Timer.I,
    A.ARM_J: Timer.J,
    A.ARM_K: Timer.K,
    A.ARM_L: Timer.L,
    A.ARM_M: Timer.M,
}
