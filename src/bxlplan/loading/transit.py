"""Public-transport stops: stop points read from a GTFS ``stops.txt`` or from a
GeoJSON / GeoPackage export of one, and the stop places they form.

A GTFS stops file mixes several kinds of rows (``location_type``): stop points and
platforms (``0`` or empty), stations (``1``), entrances and exits (``2``), generic
nodes (``3``) and boarding areas (``4``). Only stop points are places where a vehicle
stops: :func:`read_stops` keeps them and gives each its station's id and name.
:func:`stop_places` then groups the stop points that are one stop for a resident, so
that a stop is counted once, not once per platform or per direction:

- stop points sharing a ``parent_station`` are one stop place (a metro station with
  its platforms), named after the station;
- stop points with the same name within a distance of one another (both directions of
  a bus or tram stop, poles staggered around a junction) are one stop place.

A stop place keeps the positions of all its stop points: it is reached at the nearest
one, the way a green space is reached at its edge.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..errors import DataError
from .catalog import LayerSpec, get_spec
from .readers import read_vector

__all__ = ["file_entry", "read_stops", "stop_places"]

# GTFS reference, stops.txt: location_type 0 (or empty) = stop or platform,
# 1 = station, 2 = entrance/exit, 3 = generic node, 4 = boarding area.
STOP_POINT = 0
STATION = 1
_LOCATION_TYPES = {0, 1, 2, 3, 4}
_TEXT_SUFFIXES = {".txt", ".csv"}
_WHOLE_FLOAT = re.compile(r"^\s*(\d+)\.0*\s*$")


def file_entry(spec: LayerSpec, path: str | Path) -> dict[str, Any]:
    """The catalog entry of ``spec.files`` that ``path`` is, or ``{}``.

    A path matches an entry when it ends with the entry's relative path (e.g.
    ``.../transit/stib_gtfs_sample_2024-12/stops.txt``), so a user's own file is never
    mistaken for a catalog file of the same name.

    Parameters
    ----------
    spec : LayerSpec
        The catalog layer.
    path : str or Path
        A file.

    Returns
    -------
    dict
        The entry (``path``, ``partial``, ``drop_fields``, ...), or ``{}``.

    Examples
    --------
    >>> from bxlplan.loading.catalog import get_spec
    >>> spec = get_spec("transit_stops")
    >>> file_entry(spec, "/my/data/" + spec.files[0]["path"]) == spec.files[0]
    True
    >>> file_entry(spec, "/my/own/stops.txt")
    {}
    """
    parts = Path(path).parts
    for entry in spec.files:
        want = Path(entry["path"]).parts
        if len(parts) >= len(want) and parts[-len(want) :] == want:
            return dict(entry)
    return {}


def _id_text(value: Any) -> str | None:
    """A stop id as text: ``36.0`` (an id written as a float by an export) -> ``36``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    if not text:
        return None
    whole = _WHOLE_FLOAT.match(text)
    return whole.group(1) if whole else text


def _id_key(text: str | None) -> str | None:
    """Key to match a parent reference to a station id: numbers compare as numbers
    (``036`` and ``36.0`` are the same station), other ids as written."""
    if not isinstance(text, str):  # None or NaN
        return None
    return str(int(text)) if text.isdigit() else text


def _field(spec: LayerSpec, column: str, default: tuple[str, ...]) -> tuple[str, ...]:
    col = next((c for c in spec.columns if c.name == column), None)
    return col.source if col is not None else default


def _find(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    lower = {str(c).lower(): c for c in df.columns}
    return next((lower[n.lower()] for n in names if n.lower() in lower), None)


def _rows(text: bool, index: pd.Index) -> str:
    """Where rows are: line numbers of a text file (header = line 1), else features."""
    shown = ", ".join(str(i + 2 if text else i) for i in index[:5])
    more = f" and {len(index) - 5} more" if len(index) > 5 else ""
    return ("line(s) " if text else "feature(s) ") + shown + more


def _read_text(path: Path) -> pd.DataFrame:
    errors: list[str] = []
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            return pd.read_csv(
                path, sep=",", dtype=str, keep_default_na=False, encoding=encoding
            )
        except UnicodeDecodeError as exc:
            errors.append(str(exc))
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise DataError(
                f"cannot read {path} as a GTFS stops.txt: {exc}. Check that it is a "
                "complete comma-separated file with a header line."
            ) from exc
    raise DataError(f"cannot decode {path}: {errors[-1]}")


def _coordinates(
    df: pd.DataFrame, path: Path, text: bool, need: pd.Series
) -> tuple[pd.Series, pd.Series] | None:
    """``stop_lon`` / ``stop_lat`` as numbers, or None when the file has neither.

    Rows in ``need`` (the rows that are used) must have both as numbers.
    """
    lat_col, lon_col = _find(df, ("stop_lat",)), _find(df, ("stop_lon",))
    if lat_col is None or lon_col is None:
        return None
    lat = pd.to_numeric(df[lat_col], errors="coerce")
    lon = pd.to_numeric(df[lon_col], errors="coerce")
    bad = need & (lat.isna() | lon.isna() | ~lat.between(-90, 90))
    if bad.any():
        raise DataError(
            f"{path}: stop_lat/stop_lon are not coordinates on "
            f"{_rows(text, df.index[bad.to_numpy()])}. Fix those rows or "
            "remove them from the file."
        )
    return lon, lat


def read_stops(
    path: str | Path,
    spec: LayerSpec | None = None,
    *,
    entry: dict[str, Any] | None = None,
    report: list[str] | None = None,
) -> gpd.GeoDataFrame:
    """Read the stop points of a GTFS stops file (``stops.txt``, GeoJSON or GeoPackage).

    Stations, entrances, generic nodes and boarding areas are left out: they are not
    stops themselves, their stop points are (see the module docstring). Each stop point
    gets its station's id in ``parent_station`` (ids written as floats by an export,
    ``36.0``, read back as ``36``) and its name in ``station_name``. Fields the catalog
    entry lists in ``drop_fields`` are left out.

    Parameters
    ----------
    path
        A GTFS ``stops.txt`` (comma-separated, WGS84 ``stop_lat`` / ``stop_lon``) or a
        vector file of the same rows. Points without a geometry take ``stop_lat`` /
        ``stop_lon`` when the file has them, else are dropped and reported.
    spec
        The layer (default: the catalog's ``transit_stops``); its ``columns`` name the
        source fields (``code`` <- ``stop_id``, ``name``, ``location_type``,
        ``parent_station``).
    entry
        The catalog file entry of ``path`` (default: found in ``spec.files``).
    report
        Notes on what was kept and left out are appended to it.

    Returns
    -------
    GeoDataFrame
        One row per stop point, in the file's CRS (WGS84 for ``stops.txt``), with the
        source fields, ``code`` (the stop id), ``name``, ``location_type`` (0),
        ``parent_station`` and ``station_name``.

    Raises
    ------
    DataError
        When the file cannot be read, lacks the stop id field or coordinates, has a
        location type GTFS does not define, or holds no stop point; the message names
        the file, the field and the rows.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "stops.txt"
    >>> _ = path.write_text(
    ...     "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\\n"
    ...     "S1,ALMA,50.85,4.45,1,\\n"
    ...     "1,ALMA,50.8501,4.4501,0,S1\\n")
    >>> stops = read_stops(path)
    >>> stops[["code", "parent_station", "station_name"]].to_dict("records")
    [{'code': '1', 'parent_station': 'S1', 'station_name': 'ALMA'}]
    """
    path = Path(path)
    spec = spec or get_spec("transit_stops")
    entry = file_entry(spec, path) if entry is None else entry
    notes: list[str] = [] if report is None else report
    text = path.suffix.lower() in _TEXT_SUFFIXES
    if text:
        df: pd.DataFrame = _read_text(path)
    else:
        df = read_vector(path, layer=entry.get("layer"), crs=entry.get("crs"))
    df = df.drop(columns=[c for c in entry.get("drop_fields", []) if c in df.columns])
    n_raw = len(df)
    if n_raw == 0:
        raise DataError(f"{path} holds no stops: the file has no rows")

    id_col = _find(df, _field(spec, "code", ("stop_id",)))
    if id_col is None:
        wanted = ", ".join(_field(spec, "code", ("stop_id",)))
        raise DataError(
            f"{path}: the stop id field is missing (looked for {wanted}; the file has "
            f"{', '.join(map(str, df.columns))}). Rename the field in the file or add "
            "its name to the `code` column of layers/transit_stops.yaml."
        )
    type_col = _find(df, _field(spec, "location_type", ("location_type",)))
    parent_col = _find(df, _field(spec, "parent_station", ("parent_station",)))
    name_col = _find(df, _field(spec, "name", ("stop_name",)))

    # location type: empty means 0 (GTFS); anything GTFS does not define is an error
    if type_col is None:
        loc = pd.Series(STOP_POINT, index=df.index, dtype="int64")
    else:
        raw = df[type_col].astype("object")
        blank = raw.isna() | (raw.astype(str).str.strip() == "")
        loc = pd.to_numeric(raw.where(~blank, STOP_POINT), errors="coerce")
        bad = loc.isna() | ~loc.isin(list(_LOCATION_TYPES))
        if bad.any():
            where = _rows(text, df.index[bad.to_numpy()])
            values = sorted({str(v) for v in raw[bad]})[:5]
            raise DataError(
                f"{path}: field '{type_col}' has values GTFS does not define "
                f"({', '.join(values)}) on {where}. Use 0 (stop or platform), 1 "
                "(station), 2 (entrance), 3 (node) or 4 (boarding area)."
            )
        loc = loc.astype("int64")
    is_stop = loc == STOP_POINT
    is_station = loc == STATION

    ids = df[id_col].map(_id_text)
    empty_id = is_stop & ids.isna()
    if empty_id.any():
        raise DataError(
            f"{path}: field '{id_col}' is empty on "
            f"{_rows(text, df.index[empty_id.to_numpy()])}. Every stop needs an id."
        )
    names = (
        df[name_col].astype("object").map(lambda v: None if pd.isna(v) else str(v))
        if name_col is not None
        else pd.Series(None, index=df.index, dtype="object")
    )

    # geometry: the file's, else stop_lon / stop_lat
    used = is_stop | is_station
    if text:
        coords = _coordinates(df, path, text, used)
        if coords is None:
            raise DataError(
                f"{path}: a GTFS stops.txt needs the fields stop_lat and stop_lon; the "
                f"file has {', '.join(map(str, df.columns))}."
            )
        geoms = gpd.points_from_xy(*coords)
        crs: Any = "EPSG:4326"
    else:
        gdf_in = df
        geoms = np.asarray(gdf_in.geometry.values, dtype=object).copy()
        crs = gdf_in.crs
        lost = used.to_numpy() & (shapely.is_missing(geoms) | shapely.is_empty(geoms))
        if lost.any():
            coords = _coordinates(df, path, text, pd.Series(False, index=df.index))
            filled = 0
            if coords is not None and gdf_in.crs is not None:
                lon, lat = coords
                ok = lost & lon.notna().to_numpy() & lat.notna().to_numpy()
                pts = gpd.GeoSeries(
                    gpd.points_from_xy(lon[ok], lat[ok]), crs="EPSG:4326"
                ).to_crs(gdf_in.crs)
                geoms[ok] = np.asarray(pts.values, dtype=object)
                filled = int(ok.sum())
            if filled:
                notes.append(
                    f"{path}: {filled} stop(s) without geometry placed at their "
                    "stop_lat/stop_lon"
                )
        df = pd.DataFrame(df.drop(columns=gdf_in.geometry.name))
    geoms = np.asarray(geoms, dtype=object)
    no_geom = used.to_numpy() & (shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if no_geom.any():
        notes.append(
            f"{path}: dropped {int(no_geom.sum())} stop(s) or station(s) with no "
            f"position ({_rows(text, df.index[no_geom])}; ids "
            f"{', '.join(ids[no_geom][:5])})"
        )

    # stations: id -> name, for the stop points that refer to them
    station_rows = is_station.to_numpy() & ~no_geom
    station_keys = ids[station_rows].map(_id_key)
    clash = station_keys[station_keys.duplicated(keep=False)]
    if len(clash):
        raise DataError(
            f"{path}: several stations have the id {sorted(set(clash))[0]!r} "
            f"({_rows(text, clash.index)}). Station ids must be unique."
        )
    station_name = dict(zip(station_keys, names[station_rows], strict=True))

    keep = is_stop.to_numpy() & ~no_geom
    out = df.loc[keep].copy()
    if type_col is not None and type_col != "location_type":
        out = out.drop(columns=[type_col])
    out["location_type"] = loc[keep].to_numpy()
    if parent_col is None:
        parents = pd.Series(None, index=out.index, dtype="object")
    else:
        written = out[parent_col]
        parents = written.map(_id_text)
        as_float = parents.notna() & written.astype(str).str.match(_WHOLE_FLOAT)
        if as_float.any():
            notes.append(
                f"{path}: field '{parent_col}' holds station ids written as numbers "
                f"with decimals (e.g. {str(written[as_float].iloc[0])!r}), read as "
                f"{parents[as_float].iloc[0]!r}"
            )
        out = out.drop(columns=[parent_col])
    out["parent_station"] = parents.astype("object")
    out[id_col] = ids[keep].to_numpy()
    out["code"] = ids[keep].to_numpy()
    out["name"] = names[keep].to_numpy()
    out["station_name"] = parents.map(_id_key).map(station_name).astype("object")
    orphans = parents.notna() & out["station_name"].isna()
    if orphans.any() and station_name:
        notes.append(
            f"{path}: {int(orphans.sum())} stop point(s) refer to a parent station the "
            "file does not hold; they are grouped by that id, named after themselves"
        )
    stops = gpd.GeoDataFrame(out, geometry=geoms[keep], crs=crs)
    if len(stops) == 0:
        raise DataError(
            f"{path} holds no stop point (location_type 0 or empty): only stations, "
            "entrances or nodes. Use the feed's complete stops file."
        )
    counts = loc.value_counts()
    notes.append(
        f"{path}: {n_raw} rows; kept {len(stops)} stop points (location_type 0); left "
        f"out {int(counts.get(1, 0))} stations, {int(counts.get(2, 0))} entrances and "
        f"{int(counts.get(3, 0) + counts.get(4, 0))} nodes/boarding areas (not stops "
        "themselves: their stop points are)"
    )
    if entry.get("drop_fields"):
        notes.append(
            f"{path}: fields {', '.join(entry['drop_fields'])} left out "
            "(see layers/transit_stops.yaml)"
        )
    return stops


def _name_key(names: pd.Series) -> pd.Series:
    """Names compared case- and space-insensitively (``Gare  du Midi`` = ``GARE DU MIDI``)."""
    text = names.astype("object").where(names.notna(), None)
    return text.map(
        lambda v: None if v is None else " ".join(str(v).split()).casefold() or None
    )


def stop_places(
    stops: gpd.GeoDataFrame,
    same_name_within_m: float,
    *,
    report: list[str] | None = None,
) -> gpd.GeoDataFrame:
    """Group stop points into stop places (see the module docstring).

    Two stop points are in one place when they share a ``parent_station``, or when
    they have the same name (case and spacing aside) and lie within
    ``same_name_within_m`` of each other; places are the connected groups of that
    relation.

    Parameters
    ----------
    stops
        Stop points from :func:`read_stops`, in a projected CRS in metres.
    same_name_within_m
        Largest distance between two same-name stop points of one place (metres).
    report
        A note with the counts is appended to it.

    Returns
    -------
    GeoDataFrame
        ``stops`` with ``place_id`` (``station:<id>`` or ``stop:<smallest stop id>``)
        and ``place_name`` (the station's name, else the stop points' most common
        name).

    Raises
    ------
    DataError
        When ``stops`` is not in a projected CRS.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> stops = gpd.GeoDataFrame(
    ...     {"code": ["1", "2", "3"], "name": ["ALMA", "ALMA", "ALMA"],
    ...      "parent_station": [None] * 3, "station_name": [None] * 3},
    ...     geometry=[shapely.Point(0, 0), shapely.Point(30, 0), shapely.Point(900, 0)],
    ...     crs="EPSG:31370")
    >>> stop_places(stops, 200)["place_id"].tolist()
    ['stop:1', 'stop:1', 'stop:3']
    """
    if stops.crs is None or not stops.crs.is_projected:
        raise DataError(
            f"stop places need stops in a projected CRS in metres (got {stops.crs}): "
            "load them with bxlplan.load('transit_stops')"
        )
    n = len(stops)
    out = stops.copy()
    if n == 0:
        out["place_id"] = pd.Series(dtype="object")
        out["place_name"] = pd.Series(dtype="object")
        return out
    code = out["code"] if "code" in out else out.index.to_series().astype(str)
    code = code.astype(str).to_numpy()
    parent = out["parent_station"].map(
        lambda v: None if v is None or pd.isna(v) else _id_key(str(v))
    )
    names = out["name"] if "name" in out else pd.Series(None, index=out.index)
    key = _name_key(names).to_numpy()

    # edges: same parent station; same name within the distance
    geoms = np.asarray(out.geometry.values)
    a, b = shapely.STRtree(geoms).query(
        geoms, predicate="dwithin", distance=float(same_name_within_m)
    )
    same = (a < b) & pd.notna(key[a]) & (key[a] == key[b])
    pa, pb = a[same], b[same]
    with_parent = np.flatnonzero(parent.notna().to_numpy())
    first = (
        pd.Series(with_parent, index=parent.iloc[with_parent].to_numpy())
        .groupby(level=0)
        .transform("min")
        .to_numpy()
    )
    rows = np.concatenate([pa, with_parent])
    cols = np.concatenate([pb, first])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _k, label = connected_components(graph, directed=False)

    # one id and one name per place
    info = pd.DataFrame(
        {
            "label": label,
            "parent": parent.to_numpy(),
            "code": code,
            "station_name": out["station_name"].to_numpy()
            if "station_name" in out
            else None,
            "name": names.to_numpy(),
        }
    )
    grouped = info.groupby("label")
    station = grouped["parent"].min()
    place_id = pd.Series(
        np.where(
            station.notna(),
            "station:" + station.astype(str),
            "stop:" + grouped["code"].min(),
        ),
        index=station.index,
    )
    common = (
        info.dropna(subset=["name"])
        .groupby(["label", "name"])
        .size()
        .reset_index(name="n")
        .sort_values(["label", "n", "name"], ascending=[True, False, True])
        .drop_duplicates("label")
        .set_index("label")["name"]
    )
    place_name = grouped["station_name"].first().combine_first(common)
    out["place_id"] = place_id.reindex(label).to_numpy()
    out["place_name"] = place_name.reindex(label).to_numpy()
    if report is not None:
        report.append(
            f"{n} stop points form {out['place_id'].nunique()} stop places (stop points "
            f"of one station, and same-name stop points within {same_name_within_m:g} "
            "m of each other, are one place)"
        )
    return out
