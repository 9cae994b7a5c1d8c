"""The dialog state machines as data: (state, trigger) -> (next state, actions).

The dialog layer moves every dialog through :func:`transition`, so these tables are the
single source of the rules; ``docs/diagrams/dialogs.md`` is drawn from them by
``tools/diagrams.py``. Actions are descriptive labels (what the layer does alongside).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from ._errors import DialogUsageError

__all__ = [
    "DIALOG_UAC",
    "DIALOG_UAS",
    "DialogMachine",
    "DialogState",
    "Role",
    "Trigger",
    "transition",
]


class Role(enum.Enum):
    """Which side created the dialog: the caller (UAC) or the callee (UAS)."""

    UAC = "uac"
    UAS = "uas"

    # hot path: members are singletons compared by identity, so hash by identity in C
    # (Enum.__hash__ is a Python function, and every transition looks up enum keys).
    __hash__ = object.__hash__


class DialogState(enum.Enum):
    """RFC 3261 §12: early (after a 1xx with a tag), confirmed (after a 2xx), terminated."""

    INIT = "init"
    """Before the creating response (a state of the tables only; no Dialog object has it)."""
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"

    __hash__ = object.__hash__  # hot path: see Role


class Trigger(enum.Enum):
    """What happens to a dialog (the events of the tables)."""

    PROVISIONAL = "tagged 1xx"
    SUCCESS = "2xx"
    ACK = "ACK"
    REFRESH = "target refresh"
    LOCAL_BYE = "BYE sent"
    REMOTE_BYE = "BYE received"
    REJECTED = "3xx-6xx"
    CANCELLED = "CANCEL"
    FORK_LOST = "other fork answered"
    REDIRECTED = "3xx, next target tried"
    ACK_TIMEOUT = "no ACK in 64*T1"
    TIMEOUT = "408 / timeout"
    NO_DIALOG = "481"
    TRANSPORT_ERROR = "transport error"
    SESSION_EXPIRED = "session expired"
    SUBSCRIPTION_ENDED = "last subscription ended"

    __hash__ = object.__hash__  # hot path: see Role


@attrs.frozen
class DialogMachine:
    """One transition table (the shape tools/diagrams.py draws)."""

    name: str
    initial: DialogState
    table: Mapping[tuple[DialogState, Trigger], tuple[DialogState, tuple[str, ...]]]


_E, _C, _T, _I = (
    DialogState.EARLY,
    DialogState.CONFIRMED,
    DialogState.TERMINATED,
    DialogState.INIT,
)

# Ends common to both roles (RFC 3261 §12.2.1.2, §15, RFC 4028).
_COMMON: dict[tuple[DialogState, Trigger], tuple[DialogState, tuple[str, ...]]] = {
    (_E, Trigger.REFRESH): (_E, ("update remote target",)),
    (_E, Trigger.REJECTED): (_T, ()),
    (_E, Trigger.TIMEOUT): (_T, ()),
    (_E, Trigger.NO_DIALOG): (_T, ()),
    (_E, Trigger.TRANSPORT_ERROR): (_T, ()),
    (_C, Trigger.REFRESH): (_C, ("update remote target",)),
    (_C, Trigger.ACK): (_C, ("stop 2xx retransmission",)),
    (_C, Trigger.ACK_TIMEOUT): (_T, ("send BYE",)),
    (_C, Trigger.LOCAL_BYE): (_T, ("send BYE",)),
    (_C, Trigger.REMOTE_BYE): (_T, ("send 200",)),
    (_C, Trigger.TIMEOUT): (_T, ()),
    (_C, Trigger.NO_DIALOG): (_T, ()),
    (_C, Trigger.TRANSPORT_ERROR): (_T, ()),
    (_C, Trigger.SESSION_EXPIRED): (_T, ("send BYE",)),
    # RFC 6665 §4.4.1: a dialog made by SUBSCRIBE/NOTIFY ends with its last subscription.
    (_C, Trigger.SUBSCRIPTION_ENDED): (_T, ()),
}

DIALOG_UAC = DialogMachine(
    name="UAC dialog (RFC 3261 §12.1.2, §13.2.2.4)",
    initial=_I,
    table={
        (_I, Trigger.PROVISIONAL): (_E, ("route set = reversed Record-Route",)),
        (_I, Trigger.SUCCESS): (_C, ("send ACK",)),
        (_E, Trigger.PROVISIONAL): (_E, ("update route set and target",)),
        (_E, Trigger.SUCCESS): (_C, ("recompute route set", "send ACK")),
        (_E, Trigger.CANCELLED): (_T, ()),
        (_E, Trigger.FORK_LOST): (_T, ()),
        # RFC 3261 §8.1.3.4, §12.3: the final 3xx ended it; the INVITE goes to the next target.
        (_E, Trigger.REDIRECTED): (_T, ()),
        # RFC 3261 §15: the caller MAY send BYE on an early dialog.
        (_E, Trigger.LOCAL_BYE): (_T, ("send BYE",)),
        (_E, Trigger.REMOTE_BYE): (_T, ("send 200",)),
        (_C, Trigger.SUCCESS): (_C, ("re-send ACK",)),
        # RFC 3261 §13.2.2.4: a 2xx from a losing fork, or crossing our CANCEL: ACK, BYE.
        (_C, Trigger.FORK_LOST): (_T, ("send BYE",)),
        (_C, Trigger.CANCELLED): (_T, ("send BYE",)),
        **_COMMON,
    },
)

DIALOG_UAS = DialogMachine(
    name="UAS dialog (RFC 3261 §12.1.1, §13.3.1.4)",
    initial=_I,
    table={
        (_I, Trigger.PROVISIONAL): (_E, ("route set = Record-Route",)),
        (_I, Trigger.SUCCESS): (_C, ("retransmit 2xx until ACK",)),
        (_E, Trigger.PROVISIONAL): (_E, ()),
        (_E, Trigger.SUCCESS): (_C, ("retransmit 2xx until ACK",)),
        (_E, Trigger.CANCELLED): (_T, ("send 200 to CANCEL", "send 487")),
        (_E, Trigger.REMOTE_BYE): (_T, ("send 200", "send 487")),
        **_COMMON,
    },
)

_MACHINES = {Role.UAC: DIALOG_UAC, Role.UAS: DIALOG_UAS}


def transition(role: Role, state: DialogState, trigger: Trigger) -> DialogState:
    """The next state of a dialog of ``role`` in ``state`` on ``trigger``.

    Raises:
        DialogUsageError: the table has no such transition.
    """
    entry = _MACHINES[role].table.get((state, trigger))
    if entry is None:
        raise DialogUsageError(
            f"{role.value} dialog in state {state.value}: {trigger.value} is not allowed"
        )
    return entry[0]
