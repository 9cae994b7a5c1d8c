"""Errors of rvoip_media_core: one base class for the package."""

from __future__ import annotations


class MediaCoreError(Exception):
    """Base class of every error raised by rvoip_media_core."""


class WavFormatError(MediaCoreError):
    """A WAV file is missing, unreadable, or in a format the WAV source/sink cannot take."""
