"""Labels of columns and map elements in French, Dutch and English
(``layers/labels.yaml``, facility labels from ``layers/facilities.yaml``)."""

from __future__ import annotations

import re

from ..errors import ConfigError
from ..loading.catalog import read_catalog_file
from ..loading.facilities import categories

__all__ = ["LANGS", "column_label", "ui"]

LANGS = ("fr", "nl", "en")


def _check(lang: str) -> None:
    if lang not in LANGS:
        raise ConfigError(f"language must be one of {', '.join(LANGS)}, got '{lang}'")


def column_label(column: str, lang: str = "fr") -> tuple[str, str]:
    """(label, unit) of an indicator column; the column name itself if unknown."""
    _check(lang)
    labels = read_catalog_file("labels.yaml")
    if column in labels["columns"]:
        entry = labels["columns"][column]
        return entry[lang], entry.get("unit", "")
    cats = categories()
    for pat in labels["patterns"]:
        m = re.match(pat["regex"], column)
        if m:
            cat = m.groupdict().get("cat", "")
            cat_label = cats.get(cat, {}).get("label", {}).get(lang, cat)
            return pat[lang].format(
                cat=cat_label, t=m.groupdict().get("t", "")
            ), pat.get("unit", "")
    return column, ""


def ui(key: str, lang: str = "fr") -> str:
    """A label of the map interface."""
    _check(lang)
    return read_catalog_file("labels.yaml")["ui"][key][lang]
