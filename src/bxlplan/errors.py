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
    """Base class of every error bxlplan raises on purpose.

    Examples
    --------
    >>> try:
    ...     raise DataError("facilities.geojson: no 'category' field; add one")
    ... except BxlplanError as exc:
    ...     print(f"{type(exc).__name__}: {exc}")
    DataError: facilities.geojson: no 'category' field; add one
    """


class DataError(BxlplanError, ValueError):
    """A data file or frame is missing, unreadable or fails validation.

    Examples
    --------
    A notebook's ``except ValueError`` catches it:

    >>> from bxlplan.loading.catalog import data_dir
    >>> try:
    ...     data_dir("/no/such/folder")
    ... except ValueError as exc:
    ...     print(exc)
    data folder /no/such/folder does not exist or is not a folder
    """


class ConfigError(BxlplanError, ValueError):
    """A catalog, scoring or scenario file is invalid.

    Examples
    --------
    >>> from bxlplan._yaml import load_yaml
    >>> try:
    ...     load_yaml("my_scoring.yaml", text="weights: [1, 2")
    ... except ConfigError as exc:
    ...     print(isinstance(exc, ValueError), str(exc).split(":")[0])
    True my_scoring.yaml, line 1, column 15
    """


class FetchError(BxlplanError, OSError):
    """An official web service could not be read (an ``OSError`` too).

    Examples
    --------
    >>> try:
    ...     raise FetchError("https://example.org: HTTP 503 (service unavailable)")
    ... except OSError as exc:
    ...     print(isinstance(exc, BxlplanError), exc)
    True https://example.org: HTTP 503 (service unavailable)
    """
