"""The indicator registry (``layers/indicators.yaml``): every published column, once.

Each entry declares an id pattern (``access_{category}_within_{threshold}m_share``),
labels in French, Dutch and English, a unit, how origin values become an area's value
(``weighting``: residents, land or none), the formula, its reference, the inputs it
needs and what happens when they are partial. Column names, labels, scoring inputs and
the README's definitions come from it, so a column cannot mean two things.

Examples
--------
>>> from bxlplan.indicators.registry import describe
>>> d = describe("access_pharmacy_within_800m_share")
>>> d.id, d.unit, d.weighting, d.params["threshold"]
('access_{category}_within_{threshold}m_share', '%', 'residents', '800')
>>> d.label("en")
'Pharmacy: share of residents within 800 m'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ..errors import ConfigError
from ..loading.catalog import read_catalog_file

__all__ = [
    "Indicator",
    "describe",
    "flag_codes",
    "indicators",
    "resident_weighted",
]

LANGS = ("fr", "nl", "en")
WEIGHTINGS = ("residents", "land", "none")
# what each placeholder of an id may stand for
_PLACEHOLDERS = {
    "category": r"(?P<category>[a-z][a-z0-9_]*?)",
    "threshold": r"(?P<threshold>\d+)",
    "function": r"(?P<function>[a-z][a-z0-9_]*)",
    "q": r"(?P<q>[012])",
    "score": r"(?P<score>overall|diversity|social_mix|services)",
}


@dataclass(frozen=True)
class Indicator:
    """One registry entry, bound to the placeholder values of a column (``params``).

    :func:`describe` makes them from ``layers/indicators.yaml``.

    Parameters
    ----------
    id : str
        The id pattern (``access_{category}_within_{threshold}m_share``).
    labels : dict
        Label per language (``fr``, ``nl``, ``en``), with placeholders.
    unit : str
        The unit (``%``, ``m``, ``index``, ...).
    weighting : str
        How an area's value is weighted: ``residents``, ``land``, ``none``, ...
    formula : str
        The formula, in words.
    reference : str
        The literature or source it follows.
    inputs : tuple of str
        The catalog layers it is computed from.
    coverage : str
        Where it is defined (e.g. inhabited areas only).
    params : dict
        The placeholder values of the column (``{"category": "pharmacy"}``).

    Examples
    --------
    >>> d = describe("access_pharmacy_within_800m_share")
    >>> d.unit, d.weighting, d.params["threshold"]
    ('%', 'residents', '800')
    """

    id: str
    labels: dict[str, str]
    unit: str
    weighting: str
    formula: str
    reference: str
    inputs: tuple[str, ...] = ()
    coverage: str = ""
    params: dict[str, str] = field(default_factory=dict)

    def label(self, lang: str = "fr") -> str:
        """The label in ``lang`` with its placeholders filled in.

        Category labels come from ``layers/facilities.yaml``, function labels from
        ``layers/functions.yaml``.

        Parameters
        ----------
        lang : {"fr", "nl", "en"}
            The language.

        Returns
        -------
        str
            The label.

        Raises
        ------
        ConfigError
            When ``lang`` is not ``fr``, ``nl`` or ``en``.

        Examples
        --------
        >>> d = describe("access_pharmacy_within_800m_share")
        >>> d.label("nl")
        'Apotheek: aandeel inwoners binnen 800 m'
        >>> describe("mix_landuse_share_housing").label("en")
        'Land-use share: Housing'
        """
        if lang not in LANGS:
            raise ConfigError(
                f"language must be one of {', '.join(LANGS)}, got '{lang}'"
            )
        values = dict(self.params)
        if "category" in values:
            from ..loading.facilities import categories

            cat = categories().get(values["category"], {})
            values["category"] = cat.get("label", {}).get(lang, values["category"])
        if "function" in values:
            fns = read_catalog_file("functions.yaml").get("functions", {})
            values["function"] = fns.get(values["function"], {}).get(
                lang, values["function"]
            )
        score = describe(f"score_{values['score']}") if "score" in values else None
        if score is not None:  # the score's own label
            values["score"] = score.label(lang)
        text = self.labels[lang]
        for key, value in values.items():
            text = text.replace("{" + key + "}", str(value))
        return text[:1].upper() + text[1:]


@cache
def _entries() -> tuple[tuple[re.Pattern[str], dict[str, Any], str], ...]:
    raw = read_catalog_file("indicators.yaml")
    out = []
    for ident, entry in (raw.get("indicators") or {}).items():
        missing = {"label", "unit", "weighting", "formula", "reference"} - set(entry)
        if missing:
            raise ConfigError(
                f"layers/indicators.yaml: indicator '{ident}' lacks {sorted(missing)}"
            )
        if entry["weighting"] not in WEIGHTINGS:
            raise ConfigError(
                f"layers/indicators.yaml: indicator '{ident}': weighting must be one of "
                f"{', '.join(WEIGHTINGS)}"
            )
        pattern = re.escape(ident)
        for name, regex in _PLACEHOLDERS.items():
            pattern = pattern.replace(re.escape("{" + name + "}"), regex)
        out.append((re.compile(f"^{pattern}$"), entry, ident))
    return tuple(out)


def indicators() -> dict[str, dict[str, Any]]:
    """Every registry entry by id pattern (as declared in ``layers/indicators.yaml``).

    Returns
    -------
    dict
        Id pattern -> its entry (``labels``, ``unit``, ``weighting``, ``formula``,
        ``reference``, ...).

    Examples
    --------
    >>> entries = indicators()
    >>> "access_{category}_within_{threshold}m_share" in entries
    True
    >>> entries["mix_landuse_entropy"]["weighting"]
    'land'
    """
    return {ident: entry for _, entry, ident in _entries()}


def describe(column: str) -> Indicator | None:
    """The registry entry of a column, or None when the column is not an indicator.

    A pattern with ``{category}`` matches only categories of ``layers/facilities.yaml``,
    so ``access_green_space_large_nearest_m`` is the category ``green_space_large``.

    Parameters
    ----------
    column : str
        A column of an assessment.

    Returns
    -------
    Indicator or None
        The entry, bound to the column's placeholder values.

    Examples
    --------
    >>> describe("access_green_space_large_nearest_m").params
    {'category': 'green_space_large'}
    >>> describe("area_id") is None  # an identifier, not an indicator
    True
    """
    from ..loading.facilities import categories

    cats = categories()
    for regex, entry, ident in _entries():
        m = regex.match(column)
        if m is None:
            continue
        params = {k: v for k, v in m.groupdict().items() if v is not None}
        if "category" in params and params["category"] not in cats:
            continue
        return Indicator(
            id=ident,
            labels={lang: entry["label"][lang] for lang in LANGS},
            unit=str(entry["unit"]),
            weighting=entry["weighting"],
            formula=entry["formula"],
            reference=entry["reference"],
            inputs=tuple(entry.get("inputs") or ()),
            coverage=entry.get("coverage", ""),
            params=params,
        )
    return None


def resident_weighted(columns: list[str]) -> list[str]:
    """The columns whose values are resident-weighted (NaN for uninhabited areas).

    Parameters
    ----------
    columns : list of str
        Columns of an assessment.

    Returns
    -------
    list of str
        Those whose registry weighting is ``residents``, in the given order.

    Examples
    --------
    >>> resident_weighted(["access_pharmacy_within_800m_share",
    ...                    "site_pharmacy_within_800m_land_share", "area_id"])
    ['access_pharmacy_within_800m_share']
    """
    out = []
    for col in columns:
        d = describe(col)
        if d is not None and d.weighting == "residents":
            out.append(col)
    return out


def flag_codes() -> dict[str, str]:
    """The flags an area can carry (column ``flags``) and what each one does.

    Returns
    -------
    dict
        Flag -> its meaning, in English.

    Examples
    --------
    >>> list(flag_codes())
    ['uninhabited', 'small_population', 'landuse_unmapped', 'missing:<category>',
     'partial:<category>']
    """
    return dict(read_catalog_file("indicators.yaml").get("flags") or {})


def markdown(lang: str = "en") -> str:
    """The registry as a Markdown reference (``docs/indicators.md`` is made from it).

    Returns
    -------
    str
        One section per indicator: label, unit, weighting, formula, reference, inputs
        and coverage; then the flags.

    Examples
    --------
    >>> print(markdown("en").splitlines()[0])
    # Indicators
    """
    lines = [
        "# Indicators",
        "",
        "Made from `layers/indicators.yaml` by "
        "`python -m bxlplan.indicators.registry > docs/indicators.md`; do not edit by "
        "hand. `{category}` is a facility category of `layers/facilities.yaml`, "
        "`{threshold}` its walking threshold in metres, `{function}` a land-use "
        "function of `layers/functions.yaml`, `{q}` a Hill order (0, 1, 2), `{score}` "
        "one of the four scores (overall, diversity, social_mix, services).",
        "",
        "| column | label | unit | weighting |",
        "|---|---|---|---|",
    ]
    for ident, entry in indicators().items():
        lines.append(
            f"| `{ident}` | {entry['label'][lang]} | {entry['unit'] or '-'} | "
            f"{entry['weighting']} |"
        )
    for ident, entry in indicators().items():
        lines += [
            "",
            f"## `{ident}`",
            "",
            f"- **Formula:** {entry['formula']}",
            f"- **Reference:** {entry['reference']}",
            f"- **Inputs:** {', '.join(entry.get('inputs') or []) or '-'}",
        ]
        if entry.get("coverage"):
            lines.append(f"- **Coverage:** {entry['coverage']}")
    lines += ["", "## Flags (column `flags`)", ""]
    lines += [f"- `{code}`: {text}" for code, text in flag_codes().items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
