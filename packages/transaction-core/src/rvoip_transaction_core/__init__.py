"""rvoip_transaction_core: RFC 3261 SIP transactions and timers (sans-IO) with UDP, TCP and TLS transports."""

__version__ = "0.1.0"

__all__ = ["__version__"]
