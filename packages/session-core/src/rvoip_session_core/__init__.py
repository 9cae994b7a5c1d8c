"""rvoip_session_core: The rvoip call API: make, answer, hold, transfer and bridge SIP calls with RTP audio."""

__version__ = "0.1.0"

__all__ = ["__version__"]
