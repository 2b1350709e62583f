"""Exception and warning types of bxlplan.

Every error a user can cause with bad input is a :class:`BxlplanError` whose message
names the file, layer, field or row and says what to do.
"""

from __future__ import annotations

__all__ = ["BxlplanError", "DataError", "ConfigError", "FetchError"]


class BxlplanError(Exception):
    """Base class of every error bxlplan raises on purpose."""


class DataError(BxlplanError):
    """A data file is missing, unreadable or fails validation."""


class ConfigError(BxlplanError):
    """A catalog, scoring or scenario file is invalid."""


class FetchError(BxlplanError):
    """An official web service could not be read."""
