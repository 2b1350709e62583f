"""Distance to services over the street network.

Points (residential origins, facilities) are attached to the nearest street **edge**: the
position along it (``t`` metres from node ``u``) and the straight-line offset from the
point to the edge. The network distance between an origin *o* and a facility *f* is

.. math:: d(o, f) = \\text{off}_o + \\min_{a \\in \\{u_o, v_o\\}, b \\in \\{u_f, v_f\\}}
          (\\ell(o, a) + D(a, b) + \\ell(b, f)) + \\text{off}_f

with :math:`\\ell` the distance along the edge to its end node and :math:`D` the shortest
path on the graph; two points on the same edge are also joined directly along it.
Attaching to the nearest node instead moves distances by ~40 m (median) on the Brussels
network (ENVIRONMENT.md), which is why edges are used.

* nearest distance: one Dijkstra per category seeded from every facility at once;
* counts within a threshold, gravity sums :math:`\\sum_f e^{-\\beta d}` and the
  two-step floating catchment: one Dijkstra per facility bounded by the threshold
  (:func:`pair_distances`); counts alone without materialising the pairs
  (:func:`counts_within_network`).

Both run in the compiled search of :mod:`._search` (numba), which visits only the nodes
within reach and writes (origin, facility, distance) pairs directly.

Straight-line distances are available only as an explicit fallback
(:func:`euclidean_nearest`), labelled as such by the callers.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import csr_matrix

from ..loading.network import network_matrix, network_nodes
from ._search import bounded_search, nearest_segments, within_sums

__all__ = [
    "Attachment",
    "StreetGraph",
    "euclidean_nearest",
    "pair_distances",
    "counts_within",
    "counts_within_network",
    "two_step_fca",
    "within_sums",
]


@dataclass(frozen=True)
class Attachment:
    """Points attached to street edges: end nodes, position along, edge length, offset.

    Built by :meth:`StreetGraph.attach`; every array has one value per point.

    Parameters
    ----------
    edge
        Index of the edge (row of the graph's edges) each point is attached to.
    u, v
        End nodes of that edge.
    t
        Position along the edge, metres from ``u``.
    length
        Length of the edge, metres.
    offset
        Straight-line distance from the point to the edge, metres.

    Examples
    --------
    >>> a = Attachment(
    ...     edge=np.array([0]), u=np.array([0]), v=np.array([1]),
    ...     t=np.array([30.0]), length=np.array([100.0]), offset=np.array([4.0]),
    ... )
    >>> len(a), float(a.length[0] - a.t[0])
    (1, 70.0)
    """

    edge: np.ndarray
    u: np.ndarray
    v: np.ndarray
    t: np.ndarray  # metres from u along the edge
    length: np.ndarray
    offset: np.ndarray  # straight-line metres from the point to the edge

    def __len__(self) -> int:
        return len(self.edge)


class StreetGraph:
    """A walkable street graph ready for repeated distance queries.

    Parameters
    ----------
    edges
        Edges with ``u``, ``v``, ``length`` and line geometries running from ``u`` to
        ``v`` (``bxlplan.load("streets")``).

    Examples
    --------
    A 3 x 3 grid of 100 m streets (12 edges, 9 nodes):

    >>> import shapely
    >>> from bxlplan.loading.network import edges_from_lines
    >>> lines = [shapely.LineString([(x, y), (x + 100, y)])
    ...          for x in (0, 100) for y in (0, 100, 200)]
    >>> lines += [shapely.LineString([(x, y), (x, y + 100)])
    ...           for x in (0, 100, 200) for y in (0, 100)]
    >>> g = StreetGraph(edges_from_lines(np.array(lines, dtype=object)))
    >>> g.n_nodes, len(g.edges)
    (9, 12)
    """

    _last_origins: list[tuple[Attachment, tuple, np.ndarray]]

    def __init__(self, edges: gpd.GeoDataFrame) -> None:
        self.edges = edges.reset_index(drop=True)
        self.n_nodes = int(max(self.edges["u"].max(), self.edges["v"].max())) + 1
        self.matrix: csr_matrix = network_matrix(self.edges, self.n_nodes)
        self.nodes = network_nodes(self.edges)
        self._geoms = self.edges.geometry.values
        self._tree = shapely.STRtree(self._geoms)
        self._u = self.edges["u"].to_numpy()
        self._v = self.edges["v"].to_numpy()
        self._len = self.edges["length"].to_numpy(dtype=float)

    def __getstate__(self) -> dict:
        # the last origins' search inputs are a per-process convenience, not state
        return {k: v for k, v in self.__dict__.items() if k != "_last_origins"}

    def search_order(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The graph as the compiled search reads it, in a spatial node order.

        Nodes are renumbered along a Morton (Z-order) curve of 20 m cells, so that a
        search reads nearby memory.

        Returns
        -------
        tuple of ndarray
            ``rank`` (node id -> search id), and the CSR ``indptr``, ``indices``,
            ``weights`` in search ids. Built once, kept.

        Examples
        --------
        >>> import shapely
        >>> from bxlplan.loading.network import edges_from_lines
        >>> street = shapely.LineString([(0, 0), (100, 0), (100, 100)])
        >>> g = StreetGraph(edges_from_lines(np.array([street], dtype=object)))
        >>> rank, indptr, indices, weights = g.search_order()
        >>> len(rank), len(indptr) - 1, float(weights.sum())
        (2, 2, 400.0)
        """
        cached = getattr(self, "_search", None)
        if cached is None:
            x = self.nodes.x.to_numpy()
            y = self.nodes.y.to_numpy()
            xi = ((x - x.min()) // 20).astype(np.int64)
            yi = ((y - y.min()) // 20).astype(np.int64)
            z = np.zeros(len(x), dtype=np.int64)
            for b in range(24):
                z |= ((xi >> b) & 1) << (2 * b) | ((yi >> b) & 1) << (2 * b + 1)
            order = np.argsort(z, kind="stable")
            if len(order) != self.n_nodes:  # node ids with no edge: keep the identity
                order = np.arange(self.n_nodes)
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            mat = self.matrix[order][:, order].tocsr()
            mat.sort_indices()
            cached = (
                rank,
                mat.indptr.astype(np.int64),
                mat.indices.astype(np.int64),
                mat.data.astype(np.float64),
            )
            self._search = cached
        return cached

    def _segments(self) -> tuple:
        """The edges' straight segments in a uniform grid of 100 m cells (built once):
        what :meth:`attach` searches."""
        cached = getattr(self, "_segment_grid", None)
        if cached is None:
            coords, idx = shapely.get_coordinates(self._geoms, return_index=True)
            same = idx[1:] == idx[:-1]
            a, b, edge = coords[:-1][same], coords[1:][same], idx[:-1][same]
            seg_len = np.hypot(*(b - a).T)
            # distance along the edge to each segment's start
            cum = np.cumsum(seg_len)
            first = np.searchsorted(edge, edge)  # edges' segments are contiguous
            start = cum - seg_len - (cum[first] - seg_len[first])
            cell = 100.0
            x0, y0 = coords.min(axis=0) - cell
            nx, ny = (((coords.max(axis=0) - (x0, y0)) // cell) + 2).astype(int)
            lo = ((np.minimum(a, b) - (x0, y0)) // cell).astype(np.int64)
            hi = ((np.maximum(a, b) - (x0, y0)) // cell).astype(np.int64)
            span = (hi - lo + 1).prod(axis=1)
            segs = np.repeat(np.arange(len(a)), span)
            k = np.arange(len(segs)) - np.repeat(np.cumsum(span) - span, span)
            width = np.repeat(hi[:, 1] - lo[:, 1] + 1, span)
            gx = np.repeat(lo[:, 0], span) + k // width
            gy = np.repeat(lo[:, 1], span) + k % width
            cells = gx * ny + gy
            order = np.argsort(cells, kind="stable")
            ptr = np.searchsorted(cells[order], np.arange(nx * ny + 1))
            cached = (
                (a[:, 0].copy(), a[:, 1].copy(), b[:, 0].copy(), b[:, 1].copy()),
                (float(x0), float(y0), cell, int(nx), int(ny), ptr, segs[order]),
                edge,
                start,
                seg_len,
            )
            self._segment_grid = cached
        return cached

    def attach(self, points: gpd.GeoSeries | np.ndarray) -> Attachment:
        """Attach points to their nearest edge (position along it and offset).

        The nearest straight segment of the edges is found in a uniform grid (compiled,
        :func:`._search.nearest_segments`); the position along the edge is the length
        of its segments before that one plus the projection on it. Geometries that are
        not all non-empty points go through GEOS (``STRtree.query_nearest``).

        Parameters
        ----------
        points
            Point geometries in the graph's CRS.

        Returns
        -------
        Attachment
            Edge, its ends, position ``t`` from ``u``, its length and the offset.

        Examples
        --------
        >>> import shapely
        >>> from bxlplan.loading.network import edges_from_lines
        >>> line = shapely.LineString([(0, 0), (100, 0), (100, 100)])
        >>> g = StreetGraph(edges_from_lines(np.array([line], dtype=object)))
        >>> a = g.attach(shapely.points([(30, 4), (103, 60)]))
        >>> a.t.round(6).tolist(), a.offset.round(6).tolist()
        ([30.0, 160.0], [4.0, 3.0])
        """
        geoms = np.asarray(getattr(points, "values", points))
        if (
            len(geoms)
            and (shapely.get_type_id(geoms) == 0).all()
            and not shapely.is_empty(geoms).any()
        ):
            (ax, ay, bx, by), grid, seg_edge, seg_start, seg_len = self._segments()
            xy = shapely.get_coordinates(geoms)
            seg, offset, frac = nearest_segments(
                xy[:, 0].copy(), xy[:, 1].copy(), ax, ay, bx, by, *grid
            )
            edge = seg_edge[seg].astype(np.int64)
            t = np.minimum(seg_start[seg] + frac * seg_len[seg], self._len[edge])
        else:
            idx_pts, idx_edges = self._tree.query_nearest(geoms, all_matches=False)
            edge = np.empty(len(geoms), dtype=np.int64)
            edge[idx_pts] = idx_edges
            lines = self._geoms[edge]
            t = shapely.line_locate_point(lines, geoms)
            offset = shapely.distance(lines, geoms)
        return Attachment(
            edge, self._u[edge], self._v[edge], t, self._len[edge], offset
        )

    def nearest(self, origins: Attachment, facilities: Attachment) -> np.ndarray:
        """Network distance from each origin to its nearest facility.

        One search seeded from every facility at once.

        Parameters
        ----------
        origins, facilities
            Attached points (:meth:`attach`).

        Returns
        -------
        ndarray
            Distance in metres for each origin (``inf`` where no facility is reached).

        Examples
        --------
        >>> import shapely
        >>> from bxlplan.loading.network import edges_from_lines
        >>> street = shapely.LineString([(0, 0), (300, 0)])
        >>> g = StreetGraph(edges_from_lines(np.array([street], dtype=object)))
        >>> o = g.attach(shapely.points([(10, 5), (290, 5)]))
        >>> f = g.attach(shapely.points([(100, -5), (200, 0)]))
        >>> g.nearest(o, f).tolist()
        [100.0, 95.0]
        """
        out = np.full(len(origins), np.inf)
        if len(facilities) and len(origins):
            group = np.zeros(len(facilities), dtype=np.int64)
            (res,), o_order = _searches(
                self, origins, facilities, group, 1, np.inf, np.empty(0), 1
            )
            out[o_order[res[0]]] = res[2]
        return out

    def to_networkx(self) -> Any:
        """The graph as a networkx MultiGraph, the form cityseer reads.

        What cityseer's ``io.network_structure_from_nx`` reads: string node keys,
        ``x``/``y`` node attributes, ``geom`` edge geometries, ``crs`` graph attribute.

        Returns
        -------
        networkx.MultiGraph
            One node per graph node, one edge per street edge.

        Examples
        --------
        >>> import shapely
        >>> from bxlplan.loading.network import edges_from_lines
        >>> street = shapely.LineString([(0, 0), (100, 0), (100, 100)])
        >>> g = StreetGraph(edges_from_lines(np.array([street], dtype=object)))
        >>> G = g.to_networkx()
        >>> G.number_of_nodes(), G.number_of_edges(), sorted(G.nodes)
        (2, 1, ['0', '1'])
        """
        import networkx as nx

        G = nx.MultiGraph()
        G.graph["crs"] = str(self.edges.crs)
        for i, (x, y) in enumerate(zip(self.nodes.x, self.nodes.y, strict=True)):
            G.add_node(str(i), x=x, y=y)
        for u, v, geom in zip(self._u, self._v, self._geoms, strict=True):
            G.add_edge(str(u), str(v), geom=geom)
        return G


def _index_by(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR-like index: the positions whose key is ``x`` are ``by[ptr[x]:ptr[x + 1]]``."""
    by = np.argsort(keys, kind="stable")
    ptr = np.searchsorted(keys[by], np.arange(n + 1))
    return ptr, by


def _search_inputs(
    graph: StreetGraph,
    origins: Attachment,
    facilities: Attachment,
    group: np.ndarray,
    n_groups: int,
) -> tuple[tuple, tuple, tuple, np.ndarray]:
    """The compiled search's arguments: graph, facility points by group, origins by
    node (contiguous, in the search's spatial order), and the origin order used."""
    rank, indptr, indices, weights = graph.search_order()
    n = len(indptr) - 1
    g_ptr, g_by = _index_by(group, n_groups)
    f = facilities
    facility_args = (
        g_ptr, rank[f.u[g_by]], rank[f.v[g_by]], (f.offset + f.t)[g_by],
        (f.offset + f.length - f.t)[g_by], f.edge[g_by], f.t[g_by], f.offset[g_by],
    )  # fmt: skip
    origin_args, o_order = _origin_inputs(graph, origins, rank, n)
    return (indptr, indices, weights), facility_args, origin_args, o_order


def _origin_inputs(
    graph: StreetGraph, origins: Attachment, rank: np.ndarray, n: int
) -> tuple[tuple, np.ndarray]:
    """Origins by search node, contiguous with their costs, numbered along the same
    curve; the last two origin sets' are kept on the graph (every category reuses
    them)."""
    kept = getattr(graph, "_last_origins", None) or []
    for last in kept:
        if last[0] is origins:
            return last[1], last[2]
    o = np.argsort(rank[origins.u], kind="stable")
    m = len(o)
    ends = np.concatenate([rank[origins.u[o]], rank[origins.v[o]]])
    ids = np.concatenate([np.arange(m), np.arange(m)])
    costs = np.concatenate(
        [
            (origins.offset + origins.t)[o],
            (origins.offset + origins.length - origins.t)[o],
        ]
    )
    by = np.lexsort((ids, ends))
    o_ptr = np.searchsorted(ends[by], np.arange(n + 1))
    origin_args = (
        o_ptr, ids[by], costs[by], *_index_by(origins.edge[o], len(graph.edges)),
        origins.t[o], origins.offset[o],
    )  # fmt: skip
    # the last two: the preparation alternates origins and land cells per category
    graph._last_origins = [(origins, origin_args, o), *kept[:1]]
    return origin_args, o


def _searches(
    graph: StreetGraph,
    origins: Attachment,
    facilities: Attachment,
    group: np.ndarray,
    n_groups: int,
    limit: float,
    levels: np.ndarray,
    chunk: int,
) -> tuple[list, np.ndarray]:
    """Run the bounded searches of every group, chunks of groups on a thread per core
    (the compiled search releases the GIL); returns each chunk's result and the origin
    order."""
    graph_args, facility_args, origin_args, o_order = _search_inputs(
        graph, origins, facilities, group, n_groups
    )
    workers = os.cpu_count() or 1
    if len(levels):  # counts: one array per chunk, so fewer, larger chunks
        chunk = max(chunk, -(-n_groups // (4 * workers)))

    def search(start: int):
        chunk_groups = np.arange(start, min(start + chunk, n_groups))
        counts = np.zeros((len(origins) if len(levels) else 0, len(levels)), np.int64)
        res = bounded_search(  # type: ignore[call-arg]  # a numba dispatcher
            *graph_args, chunk_groups, *facility_args, *origin_args, float(limit),
            levels, counts,
        )  # fmt: skip
        return counts if len(levels) else res

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(search, range(0, n_groups, chunk))), o_order


def pair_distances(
    graph: StreetGraph,
    origins: Attachment,
    facilities: Attachment,
    facility_group: np.ndarray,
    limit: float,
    chunk: int = 64,
) -> pd.DataFrame:
    """Every (origin, facility) pair within ``limit`` metres on the network.

    One Dijkstra per facility, bounded by ``limit``, compiled with numba
    (:func:`._search.bounded_search`); chunks of facilities run on a thread per core.

    Parameters
    ----------
    graph
        The street graph.
    origins, facilities
        Attached points (:meth:`StreetGraph.attach`).
    facility_group
        Integer id of the facility each attached point belongs to (several points can
        make one facility: a green space is reached at any point of its edge).
    limit
        Largest distance kept (the threshold): the searches stop there.
    chunk
        Facilities per task.

    Returns
    -------
    DataFrame
        ``origin``, ``facility`` (group id) and ``distance`` (m), one row per pair.

    Examples
    --------
    Two origins and a facility on a 300 m street:

    >>> import shapely
    >>> from bxlplan.loading.network import edges_from_lines
    >>> street = shapely.LineString([(0, 0), (300, 0)])
    >>> g = StreetGraph(edges_from_lines(np.array([street], dtype=object)))
    >>> o = g.attach(shapely.points([(10, 5), (290, 5)]))
    >>> f = g.attach(shapely.points([(100, -5)]))
    >>> pair_distances(g, o, f, np.array([0]), limit=150)
       origin  facility  distance
    0       0         0     100.0
    """
    groups, group = np.unique(facility_group, return_inverse=True)
    n_groups = len(groups)
    if n_groups == 0 or len(origins) == 0:
        return pd.DataFrame(
            {
                "origin": np.array([], dtype=np.int64),
                "facility": np.array([], dtype=groups.dtype),
                "distance": np.array([], dtype=float),
            }
        )
    parts, o_order = _searches(
        graph, origins, facilities, group, n_groups, limit, np.empty(0), chunk
    )
    o_all, g_all, d_all = (np.concatenate(x) for x in zip(*parts, strict=True))
    return pd.DataFrame(
        {"origin": o_order[o_all], "facility": groups[g_all], "distance": d_all}
    )


def counts_within_network(
    graph: StreetGraph,
    origins: Attachment,
    facilities: Attachment,
    facility_group: np.ndarray,
    distances: list[float],
    chunk: int = 64,
) -> dict[float, np.ndarray]:
    """Facilities within each distance of every origin on the network, counted in the
    searches without materialising any (origin, facility) pair.

    The same searches and distances as :func:`pair_distances` (bounded by the
    largest distance), so the counts equal :func:`counts_within` of its pairs.

    Parameters
    ----------
    graph
        The street graph.
    origins, facilities
        Attached points (:meth:`StreetGraph.attach`).
    facility_group
        Facility id of each attached point (a facility is counted once).
    distances
        The distances, metres.
    chunk
        Facilities per task (at least a quarter of them per thread).

    Returns
    -------
    dict
        Distance -> count per origin (int64).

    Examples
    --------
    >>> import shapely
    >>> from bxlplan.loading.network import edges_from_lines
    >>> street = shapely.LineString([(0, 0), (300, 0)])
    >>> g = StreetGraph(edges_from_lines(np.array([street], dtype=object)))
    >>> o = g.attach(shapely.points([(10, 5), (290, 5)]))
    >>> f = g.attach(shapely.points([(100, -5), (200, 0)]))
    >>> counts_within_network(g, o, f, np.array([0, 1]), [150, 400])
    {150: array([1, 1]), 400: array([2, 2])}
    """
    levels = np.asarray(sorted(distances), dtype=float)
    n = len(origins)
    groups, group = np.unique(facility_group, return_inverse=True)
    if len(groups) == 0 or n == 0 or len(levels) == 0:
        return {d: np.zeros(n, dtype=np.int64) for d in distances}
    parts, o_order = _searches(
        graph, origins, facilities, group, len(groups), levels[-1], levels, chunk
    )
    total = np.sum(parts, axis=0) if len(parts) > 1 else parts[0]
    out = np.empty_like(total)
    out[o_order] = total
    return {d: out[:, int(np.searchsorted(levels, d))] for d in distances}


def counts_within(
    pairs: pd.DataFrame, n_origins: int, distances: list[float]
) -> dict[float, np.ndarray]:
    """Number of facilities within each distance of every origin, from pairs.

    Parameters
    ----------
    pairs
        ``origin``, ``facility`` and ``distance`` of the pairs (:func:`pair_distances`,
        computed with ``limit >= max(distances)``).
    n_origins
        Number of origins (length of each count array).
    distances
        The distances, metres.

    Returns
    -------
    dict
        Distance -> count per origin (int64).

    Examples
    --------
    >>> pairs = pd.DataFrame(
    ...     {"origin": [0, 0, 2], "facility": [7, 8, 7], "distance": [100.0, 400.0, 250.0]}
    ... )
    >>> counts_within(pairs, 3, [300, 500])
    {300: array([1, 0, 1]), 500: array([2, 0, 1])}
    """
    origin = pairs["origin"].to_numpy()
    dist = pairs["distance"].to_numpy()
    return {d: np.bincount(origin[dist <= d], minlength=n_origins) for d in distances}


def two_step_fca(
    pairs: pd.DataFrame, supply: pd.Series, demand: np.ndarray
) -> np.ndarray:
    """Two-step floating catchment area accessibility (Luo & Wang 2003).

    .. math:: R_j = \\frac{S_j}{\\sum_{k: d_{kj} \\le d_0} P_k}, \\qquad
              A_i = \\sum_{j: d_{ij} \\le d_0} R_j

    Parameters
    ----------
    pairs
        (origin, facility, distance) pairs already within the catchment :math:`d_0`
        (:func:`pair_distances`).
    supply
        Capacity :math:`S_j` of each facility, indexed by facility id.
    demand
        Population :math:`P_k` of each origin.

    Returns
    -------
    ndarray
        Supply per resident :math:`A_i` of each origin (0 where no facility is within
        reach). A facility absent from ``supply`` counts as capacity 0: give every
        capacity (the assessment computes 2SFCA only for categories whose capacities
        are all known, never guessing the others).

    Examples
    --------
    One facility of capacity 10 reached by two origins of 20 and 30 residents:

    >>> pairs = pd.DataFrame(
    ...     {"origin": [0, 1], "facility": [5, 5], "distance": [100.0, 200.0]}
    ... )
    >>> two_step_fca(pairs, pd.Series({5: 10.0}), np.array([20, 30, 40])).tolist()
    [0.2, 0.2, 0.0]
    """
    demand = np.asarray(demand, dtype=float)
    if len(pairs) == 0:
        return np.zeros(len(demand))
    p = pairs.assign(pop=demand[pairs["origin"].to_numpy()])
    catchment_pop = p.groupby("facility")["pop"].sum()
    s = supply.reindex(catchment_pop.index).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (s / catchment_pop).where(catchment_pop > 0, 0.0)
    p["r"] = ratio.reindex(p["facility"]).to_numpy()
    acc = np.bincount(p["origin"], weights=p["r"].fillna(0.0), minlength=len(demand))
    return acc


def euclidean_nearest(origins: np.ndarray, facilities: np.ndarray) -> np.ndarray:
    """Straight-line distance to the nearest facility: an explicit fallback only.

    Parameters
    ----------
    origins, facilities
        Point geometries (arrays of shapely points) in a metric CRS.

    Returns
    -------
    ndarray
        Distance in metres from each origin (``inf`` for all if there is no facility).

    Examples
    --------
    >>> o = shapely.points([(0, 0), (3, 0)])
    >>> euclidean_nearest(o, shapely.points([(3, 4)])).tolist()
    [5.0, 4.0]
    >>> euclidean_nearest(o, shapely.points(np.empty((0, 2)))).tolist()
    [inf, inf]
    """
    if len(facilities) == 0:
        return np.full(len(origins), np.inf)
    tree = shapely.STRtree(facilities)
    idx_o, idx_f = tree.query_nearest(origins, all_matches=False)
    out = np.full(len(origins), np.inf)
    out[idx_o] = shapely.distance(origins[idx_o], facilities[idx_f])
    return out
