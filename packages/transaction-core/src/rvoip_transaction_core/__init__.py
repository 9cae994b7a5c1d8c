"""rvoip_transaction_core: RFC 3261 SIP transactions and timers (sans-IO), UDP/TCP/TLS transports.

The sans-IO core is `TransactionLayer` (four table-driven machines, matching, one deadline
heap); `TransactionEndpoint` drives it with anyio and the transports. See API.md.
"""

from ._deadlines import Clock, Deadlines, SystemClock
from ._endpoint import TransactionEndpoint
from ._layer import UDP_SIZE_LIMIT, TransactionLayer
from ._matching import MAGIC_COOKIE, response_target, server_key, stamp_via, trying_bytes
from ._overload import AdmissionControl, OverloadConfig
from ._tables import (
    INVITE_CLIENT,
    INVITE_SERVER,
    MACHINES,
    NON_INVITE_CLIENT,
    NON_INVITE_SERVER,
    Machine,
    MachineAction,
    MachineEvent,
    State,
    Timer,
)
from ._transaction import Transaction
from ._transport import (
    Deliver,
    OnError,
    OnReject,
    StreamLimits,
    StreamTransport,
    Transport,
    UdpTransport,
    is_ip_literal,
    tune_datagram_transport,
)
from ._types import (
    RELIABLE_TRANSPORTS,
    Peer,
    ResponseReceived,
    TimerConfig,
    TransactionAck,
    TransactionError,
    TransactionEvent,
    TransactionRequest,
    TransactionTerminated,
    TransactionTimeout,
    TransactionTimeoutError,
    TransactionUsageError,
    Transmit,
    TransportFailedError,
    TransportFailure,
)

__version__ = "0.1.0"

__all__ = [
    "INVITE_CLIENT",
    "INVITE_SERVER",
    "MACHINES",
    "MAGIC_COOKIE",
    "NON_INVITE_CLIENT",
    "NON_INVITE_SERVER",
    "RELIABLE_TRANSPORTS",
    "UDP_SIZE_LIMIT",
    "AdmissionControl",
    "Clock",
    "Deadlines",
    "Deliver",
    "Machine",
    "MachineAction",
    "MachineEvent",
    "OnError",
    "OnReject",
    "OverloadConfig",
    "Peer",
    "ResponseReceived",
    "State",
    "StreamLimits",
    "StreamTransport",
    "SystemClock",
    "Timer",
    "TimerConfig",
    "Transaction",
    "TransactionAck",
    "TransactionEndpoint",
    "TransactionError",
    "TransactionEvent",
    "TransactionLayer",
    "TransactionRequest",
    "TransactionTerminated",
    "TransactionTimeout",
    "TransactionTimeoutError",
    "TransactionUsageError",
    "Transmit",
    "Transport",
    "TransportFailedError",
    "TransportFailure",
    "UdpTransport",
    "__version__",
    "is_ip_literal",
    "response_target",
    "server_key",
    "stamp_via",
    "trying_bytes",
    "tune_datagram_transport",
]

# Old names, kept for one release (not in __all__): dialog-core's AckReceived and
# RequestReceived, and sip-core's Event header, are public names meaning other things.
RequestReceived = TransactionRequest
AckReceived = TransactionAck
Event = MachineEvent
Action = MachineAction
