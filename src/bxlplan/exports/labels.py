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
    """Refuse a language other than ``fr``, ``nl`` or ``en`` (``--lang``)."""
    if lang not in LANGS:
        raise ConfigError(
            f"--lang: language must be one of {', '.join(LANGS)}, got '{lang}'"
        )


# registry units shown without a suffix (the label says what is counted)
_SILENT_UNITS = {"inhabitants", "facilities", "dwellings", "0-1"}


def column_label(column: str, lang: str = "fr") -> tuple[str, str]:
    """(label, unit) of an indicator column, from the indicator registry
    (``layers/indicators.yaml``); the column name itself if it is not an indicator."""
    check_lang(lang)
    found = describe(column)
    if found is None:
        return column, ""
    unit = "" if found.unit in _SILENT_UNITS else found.unit
    return found.label(lang), unit


def ui(key: str, lang: str = "fr") -> str:
    """A label of the map interface."""
    check_lang(lang)
    return read_catalog_file("labels.yaml")["ui"][key][lang]
