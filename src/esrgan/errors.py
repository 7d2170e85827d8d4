"""User-facing errors.

Every failure a user can cause (a bad image, wrong weights, a missing file) raises an `EsrganError`
subclass whose message says what was wrong, with which file, and what to do. The CLI prints the message
and exits non-zero without a traceback; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class EsrganError(Exception):
    """Base class for expected, user-caused failures."""


class WeightsError(EsrganError):
    """A weights file that cannot be read, recognised or loaded."""


class DownloadError(EsrganError):
    """A model file that could not be downloaded or failed its checksum."""


class ImageError(EsrganError):
    """An image that cannot be read or written."""


class ConfigError(EsrganError):
    """A bad configuration value or unknown configuration key."""
