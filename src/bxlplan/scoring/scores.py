"""0-100 scores from indicators; the rules and weights are in ``layers/scoring.yaml``.

Each score is the mean of its components, each component an indicator mapped to 0-100
by a documented rule (no ranks: a score means the same whatever else is assessed):

* **diversity**: ``100 x mix_landuse_entropy`` and ``100 (D1 - 1) / (K - 1)`` of the
  activity mix reachable on foot (K = categories with data; D1 = K is a perfectly even
  mix);
* **social mix**: ``100 x social_income_class_mix_entropy``; the income position,
  symmetric in the log ratio, :math:`100 \\max(0, 1 - |\\ln r| / \\ln s)` with ``r`` the
  ratio to the regional median and ``s`` the span (``rules.income_position.span``,
  2: half and double the median both score 0, :math:`1/\\sqrt 2` and :math:`\\sqrt 2`
  both 50); and, where dwellings by tenure are known, the social-housing share against
  a target band (``rules.social_housing``: 0 at ``zero_at[0]``, rising linearly to 100
  at ``target_band[0]``, 100 across the band, falling linearly to 0 at ``zero_at[1]``:
  concentration is not rewarded);
* **services**: ``100 x`` the share of residents within each category's threshold,
  averaged over the categories whose data is complete (missing and partial categories
  are left out and listed);
* **user indicators** (``indicators:`` in the scoring file): ``100 (v - lo) / (hi - lo)``
  clipped to 0-100 (reversed with ``higher_is_better: false``), each its own score;
* **overall**: the weighted mean of the scores (``weights``); a NaN score is left out and
  the remaining weights renormalised.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..loading.catalog import read_catalog_file

__all__ = [
    "SCORES",
    "income_position",
    "linear",
    "merge_thresholds",
    "score_components",
    "score_spread",
    "score_table",
    "scoring_config",
    "target_band",
    "validate_scoring",
    "validate_thresholds",
]

SCORES = ("diversity", "social_mix", "services")


# --------------------------------------------------------------------------- rules
def linear(values: Any, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """``100 (v - lo) / (hi - lo)`` clipped to 0-100 (NaN stays NaN).

    Parameters
    ----------
    values
        The values (array-like).
    lo, hi
        The values scoring 0 and 100.

    Returns
    -------
    ndarray
        The scores, 0-100 (float).

    Examples
    --------
    >>> linear([0.25, 1.5, float("nan")])
    array([ 25., 100.,  nan])
    >>> linear([3.0], lo=1, hi=5)  # activity mix: D1 = 3 of K = 5 categories
    array([50.])
    """
    v = np.asarray(values, dtype=float)
    return 100 * np.clip((v - lo) / (hi - lo), 0, 1)


def income_position(ratio: Any, span: float = 2.0) -> np.ndarray:
    """Closeness of an income to the regional median, symmetric in the log ratio.

    .. math:: 100 \\max\\left(0, 1 - \\frac{|\\ln r|}{\\ln s}\\right)

    ``r`` is the ratio to the regional median and ``s`` the span: an area at ``r`` and
    one at ``1 / r`` score the same, so poverty concentration weighs as much as wealth
    concentration (both are the segregation the social-mix principle targets).

    Parameters
    ----------
    ratio
        Income ratio to the regional median (array-like; 0 or less gives NaN).
    span
        The ratio (and its inverse) scoring 0 (``rules.income_position.span``).

    Returns
    -------
    ndarray
        The scores, 0-100 (float).

    Examples
    --------
    >>> income_position([1.0, 0.5, 2.0, 2 ** 0.5, 2 ** -0.5]).round(6).tolist()
    [100.0, 0.0, 0.0, 50.0, 50.0]
    """
    r = np.asarray(ratio, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = np.abs(np.log(np.where(r > 0, r, np.nan))) / math.log(span)
    return 100 * np.clip(1 - dist, 0, 1)


def target_band(
    share: Any, band: tuple[float, float], zero_at: tuple[float, float]
) -> np.ndarray:
    """A share against a target band: 100 inside ``band``, linear to 0 at ``zero_at``.

    Parameters
    ----------
    share
        The shares, 0-1 (array-like; NaN stays NaN).
    band
        ``(low, high)``: the shares scoring 100.
    zero_at
        ``(low, high)``: the shares scoring 0 on either side of the band.

    Returns
    -------
    ndarray
        The scores, 0-100 (float).

    Examples
    --------
    >>> target_band([0.0, 0.075, 0.15, 0.3, 0.45, 0.6, 1.0], (0.15, 0.3), (0.0, 0.6))
    array([  0.,  50., 100., 100.,  50.,   0.,   0.])
    """
    s = np.asarray(share, dtype=float)
    lo, hi = band
    z_lo, z_hi = zero_at
    with np.errstate(divide="ignore", invalid="ignore"):
        rise = np.clip((s - z_lo) / (lo - z_lo), 0, 1) if lo > z_lo else (s >= lo) * 1.0
        fall = np.clip((z_hi - s) / (z_hi - hi), 0, 1) if z_hi > hi else (s <= hi) * 1.0
    out = 100 * np.minimum(rise, fall)
    return np.where(np.isnan(s), np.nan, out)


# ------------------------------------------------------------------ configuration
_NUMBERS = {
    # key: (low, high, integer?) - inclusive bounds
    "origins_cell_m": (10, 1000, False),
    "gravity_beta_at_threshold": (0.01, 50, False),
    "activity_mix_distance_m": (50, 5000, False),
    "income_surroundings_m": (0, 5000, False),
    "income_classes": (2, 20, True),
    "social_housing_target": (0, 1, False),
    "population_floor": (0, 100000, False),
    "landuse_unmapped_max": (0, 1, False),
    # bounds from layers/limits.yaml (access.search_factor), checked in validate_scoring
    "access_search_factor": (0, math.inf, False),
}
_MAPPINGS = ("weights", "rules", "indicators", "thresholds")


def _where(source: str | Path | None, key: str) -> str:
    return f"{source or 'layers/scoring.yaml'}: '{key}'"


def _number(value: Any, where: str, lo: float, hi: float, integer: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ConfigError(f"{where} must be between {lo:g} and {hi:g}, got {value!r}")
    if integer and int(value) != value:
        raise ConfigError(f"{where} must be a whole number, got {value!r}")
    return float(value)


def _pair(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ConfigError(f"{where} must be a pair [low, high], got {value!r}")
    lo, hi = (_number(v, where, 0, 1, False) for v in value)
    if lo > hi:
        raise ConfigError(f"{where}: low {lo:g} is above high {hi:g}")
    return lo, hi


def validate_scoring(config: Any, source: str | Path | None = None) -> dict[str, Any]:
    """Check a scoring configuration against the registry; return it unchanged.

    Parameters
    ----------
    config
        The configuration (the content of a scoring file).
    source
        Where it came from, named in the messages (default ``layers/scoring.yaml``).

    Returns
    -------
    dict
        ``config`` itself, once checked.

    Raises
    ------
    ConfigError
        On an unknown key (listing the valid ones), a value out of bounds, a negative
        or non-numeric weight, all-zero weights or a malformed rule or user indicator;
        the message names the file and the key.

    Examples
    --------
    >>> validate_scoring({"weights": {"services": 2}})
    {'weights': {'services': 2}}
    >>> validate_scoring({"weight": {"services": 2}}, "my_scoring.yaml")
    Traceback (most recent call last):
    ...
    bxlplan.errors.ConfigError: my_scoring.yaml: 'weight' is not a scoring key; valid
    keys: access_search_factor, ..., weights
    """
    if not isinstance(config, dict):
        raise ConfigError(
            f"{source or 'scoring file'}: the top level must be a mapping of keys "
            f"({', '.join(sorted([*_NUMBERS, *_MAPPINGS]))}), got {type(config).__name__}"
        )
    for key, value in config.items():
        if key in _NUMBERS:
            _number(value, _where(source, key), *_NUMBERS[key])
        elif key not in _MAPPINGS:
            raise ConfigError(
                f"{_where(source, key)} is not a scoring key; valid keys: "
                f"{', '.join(sorted([*_NUMBERS, *_MAPPINGS]))}"
            )
        elif not isinstance(value, dict):
            raise ConfigError(f"{_where(source, key)} must be a mapping")
    users = config.get("indicators") or {}
    for name, spec in users.items():
        _validate_user_indicator(name, spec, source)
    weights = config.get("weights") or {}
    valid = [*SCORES, *users]
    for key, value in weights.items():
        if key not in valid:
            raise ConfigError(
                f"{_where(source, 'weights.' + str(key))} is not a score; valid: "
                f"{', '.join(valid)}"
            )
        _number(value, _where(source, f"weights.{key}"), 0, 1e6, False)
    if weights and sum(float(weights.get(k, 1.0)) for k in valid) <= 0:
        raise ConfigError(
            f"{_where(source, 'weights')}: all weights are zero; give at least one a "
            "positive weight"
        )
    validate_thresholds(config, source)
    rules = config.get("rules") or {}
    for key, rule in rules.items():
        where = _where(source, f"rules.{key}")
        if key == "income_position":
            _only(rule, {"span"}, where)
            span_at = _where(source, f"rules.{key}.span")
            _number(rule.get("span", 2.0), span_at, 1.01, 100, False)
        elif key == "social_housing":
            _only(rule, {"target_band", "zero_at"}, where)
            band_at = _where(source, f"rules.{key}.target_band")
            zero_at = _where(source, f"rules.{key}.zero_at")
            band = _pair(rule.get("target_band", [0.15, 0.3]), band_at)
            zero = _pair(rule.get("zero_at", [0.0, 0.6]), zero_at)
            if not zero[0] <= band[0] <= band[1] <= zero[1]:
                raise ConfigError(
                    f"{where}: zero_at must enclose target_band (zero_at[0] <= "
                    "target_band[0] <= target_band[1] <= zero_at[1])"
                )
        else:
            raise ConfigError(
                f"{where} is not a rule; valid: income_position, social_housing"
            )
    return config


def validate_thresholds(
    config: dict[str, Any], source: str | Path | None = None
) -> dict[str, int]:
    """Check ``thresholds`` and ``access_search_factor`` of a scoring configuration.

    Every category must be one of ``layers/facilities.yaml``; every threshold a whole
    number of metres within ``access.threshold_m`` of ``layers/limits.yaml`` and within
    the category's search limit (``access_search_factor`` x its catalog threshold, at
    least the activity-mix distance: :func:`bxlplan.scoring.access.search_limit`), so
    that a cached baseline can re-derive it without the graph.

    Parameters
    ----------
    config
        A scoring configuration (its ``thresholds`` may be absent).
    source
        The file it came from, for the messages.

    Returns
    -------
    dict
        Category -> threshold (int metres).

    Raises
    ------
    ConfigError
        On an unknown category (listing the known ones), a value out of bounds or not a
        whole number, or a threshold beyond its search limit (saying how far to raise
        ``access_search_factor``).

    Examples
    --------
    >>> validate_thresholds({"thresholds": {"pharmacy": 600}})
    {'pharmacy': 600}
    >>> validate_thresholds({"thresholds": {"pharmacie": 600}}, "my.yaml")
    Traceback (most recent call last):
    ...
    bxlplan.errors.ConfigError: my.yaml: 'thresholds.pharmacie' is not a facility
    category; known categories: childcare, ..., green_space_large
    """
    from ..loading.facilities import categories
    from .access import SEARCH_FACTOR, search_limit

    bounds = read_catalog_file("limits.yaml")["access"]
    factor = config.get("access_search_factor", SEARCH_FACTOR)
    if "access_search_factor" in config:
        lo, hi = bounds["search_factor"]
        _number(factor, _where(source, "access_search_factor"), lo, hi, False)
    given = config.get("thresholds") or {}
    if not isinstance(given, dict):
        raise ConfigError(f"{_where(source, 'thresholds')} must be a mapping")
    if not given:
        return {}
    known = categories()
    out = {}
    for cat, value in given.items():
        where = _where(source, f"thresholds.{cat}")
        if cat not in known:
            raise ConfigError(
                f"{where} is not a facility category; known categories: "
                f"{', '.join(known)}"
            )
        lo, hi = bounds["threshold_m"]
        thr = _number(value, f"{where} (metres)", lo, hi, True)
        limit = search_limit({"threshold_m": known[cat]["threshold_m"]}, config)
        if thr > limit:
            base = float(known[cat]["threshold_m"])
            raise ConfigError(
                f"{where} = {thr:g} m is beyond the category's search limit "
                f"{limit:g} m (access_search_factor {float(factor):g} x the catalog "
                f"threshold {base:g} m); set access_search_factor to at least "
                f"{math.ceil(100 * thr / base) / 100:g} in the scoring file"
            )
        out[cat] = int(thr)
    return out


def merge_thresholds(config: dict[str, Any], options: list[str]) -> dict[str, Any]:
    """The configuration with ``--threshold category=metres`` options merged over its
    ``thresholds`` (a new dict; ``config`` untouched), validated.

    Parameters
    ----------
    config
        A scoring configuration (:func:`scoring_config`).
    options
        ``"category=metres"`` strings, e.g. ``["pharmacy=600"]``; later ones win.

    Returns
    -------
    dict
        The configuration with the merged ``thresholds``.

    Raises
    ------
    ConfigError
        On an option that is not ``category=metres``, or one that
        :func:`validate_thresholds` refuses (the message names ``--threshold``).

    Examples
    --------
    >>> merge_thresholds({"thresholds": {"library": 500}}, ["pharmacy=600"])
    {'thresholds': {'library': 500, 'pharmacy': 600}}
    >>> merge_thresholds({}, ["pharmacy:600"])
    Traceback (most recent call last):
    ...
    bxlplan.errors.ConfigError: --threshold 'pharmacy:600': give category=metres,
    e.g. --threshold pharmacy=600
    """
    given = dict(config.get("thresholds") or {})
    for option in options:
        cat, sep, value = option.partition("=")
        if not sep or not cat.strip():
            raise ConfigError(
                f"--threshold '{option}': give category=metres, e.g. "
                "--threshold pharmacy=600"
            )
        try:
            metres = float(value)
        except ValueError:
            raise ConfigError(
                f"--threshold '{option}': '{value.strip()}' is not a whole number of "
                "metres"
            ) from None
        given[cat.strip()] = int(metres) if metres.is_integer() else metres
    merged = {**config, "thresholds": given}
    validate_thresholds(merged, "--threshold")
    return merged


def _only(value: Any, allowed: set[str], where: str) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping")
    extra = set(value) - allowed
    if extra:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(extra)}; valid: {', '.join(sorted(allowed))}"
        )


def _validate_user_indicator(name: Any, spec: Any, source: str | Path | None) -> None:
    where = _where(source, f"indicators.{name}")
    range_at = _where(source, f"indicators.{name}.range")
    if not isinstance(name, str) or not name.isidentifier() or name != name.lower():
        raise ConfigError(
            f"{where}: an indicator id is lower-case letters, digits, '_'"
        )
    if name in SCORES:
        raise ConfigError(f"{where}: '{name}' is a built-in score; choose another id")
    allowed = {"layer", "column", "label", "unit", "range", "higher_is_better"}
    _only(spec, allowed, where)
    for key in ("layer", "range"):
        if key not in spec:
            raise ConfigError(
                f"{where}: '{key}' is required ({', '.join(sorted(allowed))})"
            )
    rng = spec["range"]
    if not isinstance(rng, list | tuple) or len(rng) != 2:
        raise ConfigError(f"{range_at} must be [low, high]")
    lo, hi = (_number(v, range_at, -1e12, 1e12, False) for v in rng)
    if not lo < hi:
        raise ConfigError(f"{range_at}: low must be below high")
    from ..loading.catalog import catalog

    layer = catalog().get(spec["layer"])
    if layer is None or layer.kind != "table":
        tables = sorted(n for n, s in catalog().items() if s.kind == "table")
        raise ConfigError(
            f"{where}: layer '{spec['layer']}' is not a table layer of the catalog "
            f"(add one with BXLPLAN_LAYERS); table layers: {', '.join(tables)}"
        )
    if str(layer.raw.get("units", "")) != "neighbourhoods":
        raise ConfigError(
            f"{where}: layer '{spec['layer']}' must be joined by neighbourhood code "
            "(`units: neighbourhoods` in its catalog file)"
        )


def scoring_config(path: str | Path | None = None) -> dict[str, Any]:
    """The scoring configuration: ``layers/scoring.yaml``, updated by a user's file.

    The user's top-level keys replace the shipped ones, except ``weights``, ``rules``
    and ``indicators``, which are merged key by key. The result is validated.

    Parameters
    ----------
    path
        The user's scoring file (YAML), or None for the shipped configuration.

    Returns
    -------
    dict
        The validated configuration.

    Raises
    ------
    ConfigError
        When the file is missing, not YAML, or fails :func:`validate_scoring`.

    Examples
    --------
    >>> config = scoring_config()  # the shipped layers/scoring.yaml
    >>> config["weights"], config["population_floor"]
    ({'diversity': 1.0, 'social_mix': 1.0, 'services': 1.0}, 200)
    """
    base = dict(read_catalog_file("scoring.yaml"))
    validate_scoring(base, "layers/scoring.yaml")
    if path is None:
        return base
    from .._yaml import load_yaml

    user = load_yaml(Path(path), what="scoring file")
    if user is None:
        raise ConfigError(f"{path}: the scoring file is empty")
    validate_scoring(user, path)
    merged = {**base, **user}
    for key in _MAPPINGS:
        merged[key] = {**(base.get(key) or {}), **(user.get(key) or {})}
    return validate_scoring(merged, path)


# ---------------------------------------------------------------------- scoring
def score_components(
    ind: pd.DataFrame, categories: list[str], config: dict[str, Any], n_activity: int
) -> dict[str, pd.DataFrame]:
    """Each score's components, already on 0-100 (see the module docstring).

    Parameters
    ----------
    ind
        Indicator table (:func:`bxlplan.scoring.assess`).
    categories
        Facility categories with complete data: the services components.
    config
        The scoring configuration.
    n_activity
        Number of activity categories K of the reachable activity mix.

    Returns
    -------
    dict of str to DataFrame
        Score name -> one column per component, indexed like ``ind``.

    Examples
    --------
    >>> ind = pd.DataFrame({
    ...     "mix_landuse_entropy": [0.5], "mix_activity_hill_q1_mean": [3.0],
    ...     "social_income_class_mix_entropy": [0.8],
    ...     "social_income_ratio_to_region": [2.0],
    ...     "access_pharmacy_within_800m_share": [0.9]})
    >>> comps = score_components(ind, ["pharmacy"], {}, 5)
    >>> {score: frame.iloc[0].to_dict() for score, frame in comps.items()}
    {'diversity': {'landuse_entropy': 50.0, 'activity_hill_q1': 50.0},
     'social_mix': {'income_class_mix': 80.0, 'income_position': 0.0},
     'services': {'pharmacy': 90.0}}
    """
    rules = config.get("rules") or {}
    comp: dict[str, dict[str, Any]] = {s: {} for s in SCORES}
    comp["diversity"]["landuse_entropy"] = linear(ind["mix_landuse_entropy"])
    if n_activity > 1:
        comp["diversity"]["activity_hill_q1"] = linear(
            ind["mix_activity_hill_q1_mean"], 1, n_activity
        )
    comp["social_mix"]["income_class_mix"] = linear(
        ind["social_income_class_mix_entropy"]
    )
    comp["social_mix"]["income_position"] = income_position(
        ind["social_income_ratio_to_region"],
        float((rules.get("income_position") or {}).get("span", 2.0)),
    )
    if "social_housing_share" in ind and ind["social_housing_share"].notna().any():
        sh = rules.get("social_housing") or {}
        comp["social_mix"]["social_housing_band"] = target_band(
            ind["social_housing_share"],
            tuple(sh.get("target_band", (0.15, 0.3))),
            tuple(sh.get("zero_at", (0.0, 0.6))),
        )
    for col in ind.columns:
        if col.startswith("access_") and col.endswith("m_share") and "_within_" in col:
            cat = col[len("access_") :].rsplit("_within_", 1)[0]
            if cat in categories:
                comp["services"][cat] = linear(ind[col])
    for name, spec in (config.get("indicators") or {}).items():
        lo, hi = spec["range"]
        if not spec.get("higher_is_better", True):
            lo, hi = hi, lo
        comp[name] = {name: linear(ind[f"user_{name}"], lo, hi)}
    return {k: pd.DataFrame(v, index=ind.index) for k, v in comp.items()}


def score_table(
    ind: pd.DataFrame, categories: list[str], config: dict[str, Any], n_activity: int
) -> pd.DataFrame:
    """Scores of each area: ``score_<name>`` (mean of its components) and
    ``score_overall`` (weighted mean of the scores, NaN ones left out).

    Parameters
    ----------
    ind, categories, config, n_activity
        As for :func:`score_components`.

    Returns
    -------
    DataFrame
        ``score_diversity``, ``score_social_mix``, ``score_services``, one
        ``score_<id>`` per user indicator and ``score_overall``, 0-100 or NaN.

    Examples
    --------
    >>> ind = pd.DataFrame({
    ...     "mix_landuse_entropy": [0.5], "mix_activity_hill_q1_mean": [3.0],
    ...     "social_income_class_mix_entropy": [0.8],
    ...     "social_income_ratio_to_region": [2.0],
    ...     "access_pharmacy_within_800m_share": [0.9]})
    >>> cfg = {"weights": {"diversity": 1, "social_mix": 1, "services": 2}}
    >>> score_table(ind, ["pharmacy"], cfg, 5).round(2).iloc[0].tolist()
    [50.0, 40.0, 90.0, 67.5]
    """
    comps = score_components(ind, categories, config, n_activity)
    out = pd.DataFrame(index=ind.index)
    for name, frame in comps.items():
        out[f"score_{name}"] = (
            frame.mean(axis=1, skipna=True) if frame.shape[1] else np.nan
        )
    weights = config.get("weights") or {}
    w = pd.Series({f"score_{n}": float(weights.get(n, 1.0)) for n in comps})
    vals = out[w.index]
    wsum = (vals.notna() * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["score_overall"] = (vals.fillna(0) * w).sum(axis=1) / wsum
    out.loc[wsum <= 0, "score_overall"] = np.nan
    return out


def score_spread(
    ind: pd.DataFrame, categories: list[str], config: dict[str, Any], n_activity: int
) -> pd.DataFrame:
    """The distribution of every score component over the given areas.

    Equal weights mean comparable spread only if the components spread alike: this
    table (count, mean, std, min, quartiles, max per component) says whether they do.
    Components are rule-based (absolute 0-100), not rank-normalised, so a score keeps its
    meaning whatever set of areas is assessed.

    Parameters
    ----------
    ind
        Indicator table (:func:`bxlplan.scoring.assess`).
    categories
        Facility categories with complete data: the services components.
    config
        The scoring configuration.
    n_activity
        Number of activity categories K of the reachable activity mix.

    Returns
    -------
    DataFrame
        One row per component (``<score>.<component>``), the columns of
        :meth:`pandas.Series.describe`.

    Examples
    --------
    >>> ind = pd.DataFrame({
    ...     "mix_landuse_entropy": [0.5, 0.2], "mix_activity_hill_q1_mean": [3.0, 5.0],
    ...     "social_income_class_mix_entropy": [0.8, 0.4],
    ...     "social_income_ratio_to_region": [2.0, 1.0],
    ...     "access_pharmacy_within_800m_share": [0.9, 0.5]})
    >>> score_spread(ind, ["pharmacy"], {}, 5)[["count", "mean", "min", "max"]]
                                count  mean   min    max
    diversity.landuse_entropy     2.0  35.0  20.0   50.0
    diversity.activity_hill_q1    2.0  75.0  50.0  100.0
    social_mix.income_class_mix   2.0  60.0  40.0   80.0
    social_mix.income_position    2.0  50.0   0.0  100.0
    services.pharmacy             2.0  70.0  50.0   90.0
    """
    rows = {}
    for score, frame in score_components(ind, categories, config, n_activity).items():
        for col in frame.columns:
            rows[f"{score}.{col}"] = frame[col].describe()
    return pd.DataFrame(rows).T
