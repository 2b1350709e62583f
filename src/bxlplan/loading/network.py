"""The walkable street network.

Line layers (the pack's named streets: OSM ways *and* relations whose members overlap)
are deduplicated and noded with one :func:`shapely.union_all`: overlapping segments
merge and every crossing becomes a node. Only the largest connected component is kept;
what was dropped is reported. OSMnx GraphML files are read as they are.

The network is a GeoDataFrame of edges (``u``, ``v``, ``length`` in metres, each
geometry running from node ``u`` to node ``v``); :func:`network_nodes` gives the nodes.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

from ..errors import DataError
from .catalog import LayerSpec
from .provenance import provenance
from .readers import read_vector
from .validate import WORKING_CRS, clean_geometries, to_working_crs

__all__ = ["edges_from_lines", "load_streets", "network_matrix", "network_nodes"]

#: endpoints closer than this (m) are the same node
NODE_PRECISION_M = 0.001


def _node_ids(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    starts = shapely.get_coordinates(shapely.get_point(lines, 0))
    ends = shapely.get_coordinates(shapely.get_point(lines, -1))
    xy = np.round(np.vstack([starts, ends]) / NODE_PRECISION_M) * NODE_PRECISION_M
    coords, inverse = np.unique(xy, axis=0, return_inverse=True)
    n = len(lines)
    return inverse[:n], inverse[n:], coords


def _keep_largest(
    edges: gpd.GeoDataFrame, n_nodes: int, report: list[str]
) -> gpd.GeoDataFrame:
    adj = coo_matrix(
        (np.ones(len(edges)), (edges["u"].to_numpy(), edges["v"].to_numpy())),
        shape=(n_nodes, n_nodes),
    )
    n_comp, labels = connected_components(adj, directed=False)
    lab = labels[edges["u"].to_numpy()]
    length_by_comp = np.bincount(
        lab, weights=edges["length"].to_numpy(), minlength=n_comp
    )
    biggest = int(length_by_comp.argmax())
    keep = lab == biggest
    total = float(edges["length"].sum())
    share = float(edges.loc[keep, "length"].sum()) / total
    report.append(
        f"street network: {len(edges)} edges, {total / 1000:.1f} km in {n_comp} "
        f"connected components; kept the largest ({share:.1%} of the length); dropped "
        f"{int((~keep).sum())} edges ({(total * (1 - share)) / 1000:.1f} km) in "
        f"{n_comp - 1} smaller components"
    )
    kept = edges.loc[keep].copy()
    # renumber nodes 0..n-1
    used, inverse = np.unique(
        np.concatenate([kept["u"], kept["v"]]), return_inverse=True
    )
    kept["u"] = inverse[: len(kept)]
    kept["v"] = inverse[len(kept) :]
    kept.attrs["network"] = {
        "components": int(n_comp),
        "largest_component_share": share,
        "total_length_km": total / 1000,
        "kept_length_km": float(kept["length"].sum()) / 1000,
        "dropped_edges": int((~keep).sum()),
        "nodes": int(len(used)),
        "edges": int(len(kept)),
    }
    return kept.reset_index(drop=True)


def _split_loops(lines: np.ndarray) -> np.ndarray:
    """Split closed lines (roundabouts, loops touching the rest at one point) at their
    middle vertex into two edges, so that they stay in the graph."""
    closed = shapely.is_closed(lines)
    if not closed.any():
        return lines
    halves = []
    for ring in lines[closed]:
        xy = shapely.get_coordinates(ring)
        k = len(xy) // 2
        halves += [shapely.linestrings(xy[: k + 1]), shapely.linestrings(xy[k:])]
    return np.concatenate([lines[~closed], np.array(halves, dtype=object)])


def edges_from_lines(
    lines: gpd.GeoSeries | NDArray[np.object_], report: list[str] | None = None
) -> gpd.GeoDataFrame:
    """Turn line geometries (EPSG:31370) into the largest connected walkable graph.

    Overlapping segments are merged and lines are split at every crossing (also where
    a bridge passes over a street: the pack has no levels to tell them apart).

    Parameters
    ----------
    lines : GeoSeries or ndarray
        Line geometries in EPSG:31370.
    report : list of str, optional
        A note on the components kept and dropped is appended to it.

    Returns
    -------
    GeoDataFrame
        One row per edge: ``u``, ``v`` (node ids, see :func:`network_nodes`),
        ``length`` (m) and the line; the counts in ``.attrs["network"]``.

    Raises
    ------
    DataError
        When there is no line geometry.

    Examples
    --------
    Two crossing streets become four edges; an isolated one is dropped:

    >>> lines = gpd.GeoSeries([shapely.LineString([(0, 0), (100, 0)]),
    ...                        shapely.LineString([(50, -50), (50, 50)]),
    ...                        shapely.LineString([(500, 500), (510, 500)])], crs=31370)
    >>> edges = edges_from_lines(lines)
    >>> len(edges), float(edges["length"].sum())
    (4, 200.0)
    """
    report = report if report is not None else []
    geoms = np.asarray(getattr(lines, "values", lines))
    geoms = shapely.get_parts(geoms[~shapely.is_missing(geoms)])
    geoms = geoms[shapely.get_type_id(geoms) == 1]  # LineString
    if len(geoms) == 0:
        raise DataError("no line geometry to build a street network from")
    noded = shapely.get_parts(shapely.union_all(geoms))
    noded = _split_loops(noded[shapely.length(noded) > 0])
    u, v, _coords = _node_ids(noded)
    edges = gpd.GeoDataFrame(
        {"u": u, "v": v, "length": shapely.length(noded)},
        geometry=noded,
        crs=WORKING_CRS,
    )
    return _keep_largest(edges, int(max(u.max(), v.max())) + 1, report)


def _edges_from_graphml(path: Path, report: list[str]) -> gpd.GeoDataFrame:
    import networkx as nx  # only for GraphML files: keeps `import bxlplan` light

    try:
        G = nx.read_graphml(path)
    except Exception as exc:  # networkx raises several unrelated types
        raise DataError(f"cannot read {path} as GraphML: {exc}") from exc
    crs = G.graph.get("crs")
    if crs is None:
        raise DataError(f"{path}: the graph has no 'crs' attribute (OSMnx writes one)")
    nodes = list(G.nodes)
    index = {n: i for i, n in enumerate(nodes)}
    try:
        xy = np.array([[float(G.nodes[n]["x"]), float(G.nodes[n]["y"])] for n in nodes])
    except KeyError as exc:
        raise DataError(f"{path}: every node needs 'x' and 'y' attributes") from exc
    seen: set[tuple[int, int]] = set()
    rows, geoms = [], []
    for a, b, attrs in G.edges(data=True):
        i, j = index[a], index[b]
        key = (min(i, j), max(i, j))
        wkt = attrs.get("geometry")
        geom = shapely.from_wkt(wkt) if wkt else shapely.linestrings([xy[i], xy[j]])
        # one walkable edge per street: drop the reverse twin of a two-way street
        if key in seen and not wkt:
            continue
        seen.add(key)
        rows.append((i, j))
        geoms.append(geom)
    edges = gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=["u", "v"]), geometry=geoms, crs=crs
    )
    edges = to_working_crs(edges, str(path))
    edges = clean_geometries(edges, str(path), report)
    # the geometry must run from u to v: reverse the ones that do not
    start = shapely.get_coordinates(shapely.get_point(edges.geometry.values, 0))
    node_xy = gpd.GeoSeries(gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=crs).to_crs(
        WORKING_CRS
    )
    nxy = shapely.get_coordinates(node_xy.values)
    d_u = np.hypot(*(start - nxy[edges["u"]]).T)
    d_v = np.hypot(*(start - nxy[edges["v"]]).T)
    flip = d_v < d_u
    if flip.any():
        geoms = edges.geometry.values.copy()
        geoms[flip] = shapely.reverse(geoms[flip])
        edges = edges.set_geometry(geoms)
    edges["length"] = edges.length
    # a two-way street is two directed edges in OSMnx: keep one walkable edge
    pairs = pd.DataFrame(
        {
            "a": np.minimum(edges["u"], edges["v"]),
            "b": np.maximum(edges["u"], edges["v"]),
            "l": edges["length"].round(2),
        }
    )
    edges = edges.loc[
        ~pairs.duplicated().to_numpy() & (edges["u"] != edges["v"]).to_numpy()
    ]
    return _keep_largest(edges.reset_index(drop=True), len(nodes), report)


def load_streets(spec: LayerSpec, path: Path) -> gpd.GeoDataFrame:
    """Load the walkable street network (edges) from a line layer or a GraphML file.

    Parameters
    ----------
    spec : LayerSpec
        The ``streets`` entry of the catalog.
    path : Path
        A line layer (GeoPackage, GeoJSON, Shapefile) or an OSMnx GraphML file.

    Returns
    -------
    GeoDataFrame
        The edges (:func:`edges_from_lines`) in EPSG:31370, provenance in
        ``.attrs["bxlplan"]`` (with the ``network`` counts).

    Raises
    ------
    DataError
        When the file cannot be read or holds no line.

    Examples
    --------
    >>> from bxlplan.loading.catalog import data_dir, get_spec
    >>> spec = get_spec("streets")
    >>> path, _ = spec.find_file(data_dir())  # $BXLPLAN_DATA
    >>> edges = load_streets(spec, path)
    >>> edges.crs.to_epsg(), {"u", "v", "length"} <= set(edges.columns)
    (31370, True)
    """
    report: list[str] = []
    if path.suffix.lower() == ".graphml":
        edges = _edges_from_graphml(path, report)
    else:
        lines = read_vector(path)
        lines = to_working_crs(lines, str(path))
        lines = clean_geometries(lines, str(path), report)
        edges = edges_from_lines(lines.geometry, report)
    network = edges.attrs.get("network", {})
    edges.attrs["bxlplan"] = provenance(spec, path, report, network=network)
    return edges


def network_nodes(edges: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Nodes of an edge GeoDataFrame (index = node id), from the edge end points.

    Parameters
    ----------
    edges : GeoDataFrame
        Edges with ``u``, ``v`` and line geometries (:func:`edges_from_lines`).

    Returns
    -------
    GeoDataFrame
        ``x``, ``y`` and a point per node, indexed by node id.

    Examples
    --------
    >>> edges = edges_from_lines(gpd.GeoSeries(
    ...     [shapely.LineString([(0, 0), (100, 0)])], crs=31370))
    >>> network_nodes(edges)[["x", "y"]].to_numpy().tolist()
    [[0.0, 0.0], [100.0, 0.0]]
    """
    n = int(max(edges["u"].max(), edges["v"].max())) + 1
    xy = np.full((n, 2), np.nan)
    geoms = edges.geometry.values
    xy[edges["u"].to_numpy()] = shapely.get_coordinates(shapely.get_point(geoms, 0))
    xy[edges["v"].to_numpy()] = shapely.get_coordinates(shapely.get_point(geoms, -1))
    return gpd.GeoDataFrame(
        {"x": xy[:, 0], "y": xy[:, 1]},
        geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
        crs=edges.crs,
    )


def network_matrix(edges: gpd.GeoDataFrame, n_nodes: int | None = None) -> csr_matrix:
    """Symmetric sparse adjacency matrix of edge lengths (shortest parallel edge kept).

    Parameters
    ----------
    edges : GeoDataFrame
        Edges with ``u``, ``v`` and ``length`` (:func:`edges_from_lines`).
    n_nodes : int, optional
        The number of nodes (default: the largest node id + 1).

    Returns
    -------
    scipy.sparse.csr_matrix
        ``n_nodes`` x ``n_nodes``; entry (u, v) is the length of the edge (m).

    Examples
    --------
    >>> edges = edges_from_lines(gpd.GeoSeries(
    ...     [shapely.LineString([(0, 0), (100, 0)])], crs=31370))
    >>> network_matrix(edges).toarray()
    array([[  0., 100.],
           [100.,   0.]])
    """
    n = n_nodes or int(max(edges["u"].max(), edges["v"].max())) + 1
    u = edges["u"].to_numpy()
    v = edges["v"].to_numpy()
    w = edges["length"].to_numpy(dtype=float)
    # parallel edges: keep the shortest
    df = (
        pd.DataFrame({"a": np.minimum(u, v), "b": np.maximum(u, v), "w": w})
        .groupby(["a", "b"])["w"]
        .min()
        .reset_index()
    )
    a, b, w = df["a"].to_numpy(), df["b"].to_numpy(), df["w"].to_numpy()
    w = np.maximum(w, 1e-9)  # csgraph treats explicit zeros as missing edges
    return csr_matrix(
        (np.concatenate([w, w]), (np.concatenate([a, b]), np.concatenate([b, a]))),
        shape=(n, n),
    )
