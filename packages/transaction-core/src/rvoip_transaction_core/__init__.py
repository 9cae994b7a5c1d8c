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
    Action,
    Event,
    Machine,
    State,
    Timer,
)
from ._transaction import Transaction
from ._transport import (
    Deliver,
    OnError,
    StreamTransport,
    Transport,
    UdpTransport,
    tune_datagram_transport,
)
from ._types import (
    RELIABLE_TRANSPORTS,
    AckReceived,
    Peer,
    RequestReceived,
    ResponseReceived,
    TimerConfig,
    TransactionError,
    TransactionEvent,
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
    "AckReceived",
    "Action",
    "AdmissionControl",
    "Clock",
    "Deadlines",
    "Deliver",
    "Event",
    "Machine",
    "OnError",
    "OverloadConfig",
    "Peer",
    "RequestReceived",
    "ResponseReceived",
    "State",
    "StreamTransport",
    "SystemClock",
    "Timer",
    "TimerConfig",
    "Transaction",
    "TransactionEndpoint",
    "TransactionError",
    "TransactionEvent",
    "TransactionLayer",
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
    "response_target",
    "server_key",
    "stamp_via",
    "trying_bytes",
    "tune_datagram_transport",
]
