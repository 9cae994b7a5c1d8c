"""rvoip_sip_core: SIP messages, URIs, typed headers, parser/serializer, SDP and digest auth (sans-IO)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
