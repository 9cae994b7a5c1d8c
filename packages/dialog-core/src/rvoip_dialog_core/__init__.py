"""rvoip_dialog_core: SIP dialogs, in-dialog requests, PRACK, REFER/NOTIFY and session timers (sans-IO)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
