"""Exception and warning types of bxlplan.

Every error a user can cause with bad input is a :class:`BxlplanError` whose message
names the file, layer, field or row and says what to do. Like osmnx's, the errors are
also the standard types a Python user already catches: a bad value or file is a
:class:`ValueError` (:class:`DataError`, :class:`ConfigError`), a web service that
cannot be read is an :class:`OSError` (:class:`FetchError`).

Examples
--------
>>> issubclass(DataError, ValueError) and issubclass(DataError, BxlplanError)
True
>>> issubclass(FetchError, OSError)
True
"""

from __future__ import annotations

__all__ = ["BxlplanError", "ConfigError", "DataError", "FetchError"]


class BxlplanError(Exception):
    """Base class of every error bxlplan raises on purpose."""


class DataError(BxlplanError, ValueError):
    """A data file or frame is missing, unreadable or fails validation."""


class ConfigError(BxlplanError, ValueError):
    """A catalog, scoring or scenario file is invalid."""


class FetchError(BxlplanError, OSError):
    """An official web service could not be read (an ``OSError`` too)."""
