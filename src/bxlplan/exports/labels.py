"""Labels of columns and map elements in French, Dutch and English: indicator columns
from the indicator registry (``layers/indicators.yaml``), map interface words from
``layers/labels.yaml``."""

from __future__ import annotations

from ..errors import ConfigError
from ..indicators.registry import describe
from ..loading.catalog import read_catalog_file

__all__ = ["LANGS", "check_lang", "column_label", "ui"]

LANGS = ("fr", "nl", "en")


def check_lang(lang: str) -> None:
    """Refuse a language other than ``fr``, ``nl`` or ``en`` (``--lang``).

    Parameters
    ----------
    lang : str
        The language asked for.

    Raises
    ------
    ConfigError
        For any other language; the message lists the three.

    Examples
    --------
    >>> check_lang("nl")
    >>> check_lang("de")
    Traceback (most recent call last):
    ...
    bxlplan.errors.ConfigError: ...
    """
    if lang not in LANGS:
        raise ConfigError(
            f"--lang: language must be one of {', '.join(LANGS)}, got '{lang}'"
        )


# registry units shown without a suffix (the label says what is counted)
_SILENT_UNITS = {"inhabitants", "facilities", "dwellings", "0-1"}


def column_label(column: str, lang: str = "fr") -> tuple[str, str]:
    """The label and unit of an indicator column, from the indicator registry.

    Parameters
    ----------
    column : str
        A column of an assessment.
    lang : {"fr", "nl", "en"}
        The language.

    Returns
    -------
    tuple of (str, str)
        The label and the unit (``layers/indicators.yaml``); the column name and
        ``""`` when it is not an indicator.

    Examples
    --------
    >>> column_label("access_pharmacy_within_800m_share", "en")
    ('Pharmacy: share of residents within 800 m', '%')
    >>> column_label("area_id")
    ('area_id', '')
    """
    check_lang(lang)
    found = describe(column)
    if found is None:
        return column, ""
    unit = "" if found.unit in _SILENT_UNITS else found.unit
    return found.label(lang), unit


def ui(key: str, lang: str = "fr") -> str:
    """A label of the map interface (``ui`` of ``layers/labels.yaml``).

    Parameters
    ----------
    key : str
        The label's key (``no_data``, ``facilities``, ``shortage``, ...).
    lang : {"fr", "nl", "en"}
        The language.

    Returns
    -------
    str
        The label.

    Examples
    --------
    >>> ui("shortage", "nl"), ui("no_data", "fr")
    ('Tekortzone', 'pas de donnée')
    """
    check_lang(lang)
    return read_catalog_file("labels.yaml")["ui"][key][lang]
