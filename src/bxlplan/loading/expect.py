"""Plausibility checks of a loaded layer against its catalog ``expect`` ranges.

``bxlplan check``, a fallback file in :func:`bxlplan.load` and ``prepare()`` all ask the
same question - is this layer plausible for the Brussels-Capital Region? - and answer
it here, once: feature or row counts, area, values present, totals, street length and
the share of the network in its largest connected component.
"""

from __future__ import annotations

from typing import Any

from ..errors import DataError
from .catalog import LayerSpec

__all__ = ["implausibilities", "require_plausible"]


def _value(key: str, obj: Any) -> float | None:
    if key in ("features", "rows"):
        return len(obj)
    if key == "area_km2":
        return float(obj.area.sum()) / 1e6
    if key == "with_value":
        return int(obj["value"].notna().sum())
    if key == "total":
        return float(obj["value"].sum())
    if key in ("largest_component_share", "length_km"):
        net = obj.attrs.get("bxlplan", {}).get("network") or {}
        value = net.get("kept_length_km" if key == "length_km" else key)
        return None if value is None else float(value)
    return None


def implausibilities(spec: LayerSpec, obj: Any) -> list[str]:
    """What falls outside the layer's ``expect`` ranges (empty when plausible).

    Parameters
    ----------
    spec
        The catalog entry of the layer.
    obj
        The loaded layer (GeoDataFrame or DataFrame, as :func:`bxlplan.load` returns).

    Returns
    -------
    list of str
        One sentence per failed expectation, e.g. ``"length_km = 330 is outside the
        expected 2,000..2,300"``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from bxlplan.loading.catalog import get_spec
    >>> tiny = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 10, 10)], crs=31370)
    >>> implausibilities(get_spec("region"), tiny)
    ['area_km2 = 0.0001 is outside the expected ...']
    """
    problems = []
    for key, (lo, hi) in spec.expect.items():
        value = _value(key, obj)
        if value is not None and not lo <= value <= hi:
            problems.append(
                f"{key} = {value:,.4g} is outside the expected {lo:,}..{hi:,}"
            )
    return problems


def require_plausible(spec: LayerSpec, obj: Any, *, what: str = "") -> None:
    """Raise a :class:`DataError` naming the layer and file when it is implausible.

    Parameters
    ----------
    spec : LayerSpec
        The catalog entry of the layer.
    obj : GeoDataFrame or DataFrame
        The loaded layer.
    what : str, optional
        Words inserted after the file name in the message (why the file is used).

    Raises
    ------
    DataError
        When any ``expect`` range fails; the message names the file and says what to do.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from bxlplan.loading.catalog import get_spec
    >>> tiny = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 10, 10)], crs=31370)
    >>> require_plausible(get_spec("region"), tiny)
    Traceback (most recent call last):
    ...
    bxlplan.errors.DataError: ...area_km2 = 0.0001 is outside the expected ...
    """
    problems = implausibilities(spec, obj)
    if problems:
        source = obj.attrs.get("bxlplan", {}).get("source", "?")
        raise DataError(
            f"layer '{spec.name}' ({source}){what} is not plausible for the Brussels "
            f"region: {'; '.join(problems)}. Check the file, or supply one that covers "
            "the whole region (`bxlplan check` lists every layer's status)."
        )
