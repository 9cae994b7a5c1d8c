"""rvoip_media_core: G.711 and jitter buffer C kernel (numpy fallback), mixing, tones, E-model quality."""

__version__ = "0.1.0"

__all__ = ["__version__"]
