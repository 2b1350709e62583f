"""Compiled bounded network searches (numba): the inner loop of :mod:`.access`.

One Dijkstra per facility, stopped at the distance limit, that visits only the few
hundred nodes it reaches and writes (origin, facility, distance) pairs directly, or only
counts them per origin and distance (no pair materialised). Scipy's
``dijkstra(indices=..., limit=...)`` returns a dense row of all ~20k nodes per search
and holds the GIL; expanding those rows to origins took more time than the searches.
Here the scratch arrays are reset through the list of touched entries, and the function
releases the GIL (``nogil``) so that threads run searches on every core. The caller
numbers the nodes in a spatial (Morton) order and lists the origins of each node
contiguously with their costs: the searches then read nearby memory (the origin lookup
through scattered per-origin arrays took half the time).

Distances follow :mod:`.access`: a point attached to an edge reaches its two end nodes
at ``offset + t`` and ``offset + length - t``; two points on the same edge are also
joined directly along it (``off_a + |t_a - t_b| + off_b``).
"""

from __future__ import annotations

import numpy as np
from numba import njit


# a 4-ary heap: shallower than a binary one, and its four children share a cache line
# (about 1.2x faster searches on the Brussels network)
@njit(cache=True, nogil=True)
def _push(heap_d, heap_n, size, d, node):
    i = size
    while i > 0:
        parent = (i - 1) >> 2
        if heap_d[parent] <= d:
            break
        heap_d[i] = heap_d[parent]
        heap_n[i] = heap_n[parent]
        i = parent
    heap_d[i] = d
    heap_n[i] = node
    return size + 1


@njit(cache=True, nogil=True)
def _pop(heap_d, heap_n, size):
    d = heap_d[0]
    node = heap_n[0]
    size -= 1
    last_d = heap_d[size]
    last_n = heap_n[size]
    i = 0
    while True:
        first = 4 * i + 1
        if first >= size:
            break
        child = first
        child_d = heap_d[first]
        for c in range(first + 1, min(first + 4, size)):
            if heap_d[c] < child_d:
                child_d = heap_d[c]
                child = c
        if child_d >= last_d:
            break
        heap_d[i] = child_d
        heap_n[i] = heap_n[child]
        i = child
    if size > 0:
        heap_d[i] = last_d
        heap_n[i] = last_n
    return d, node, size


@njit(cache=True, nogil=True)
def _lower(values, touched, n_touched, i, value):
    """Lower ``values[i]`` to ``value``; the first time, record ``i`` in ``touched``
    (the entries to reset after the search). Returns the new ``n_touched``."""
    if values[i] == np.inf:
        touched[n_touched] = i
        n_touched += 1
    values[i] = value
    return n_touched


@njit(cache=True, nogil=True)
def bounded_search(
    indptr,
    indices,
    weights,
    groups,
    group_ptr,
    f_u,
    f_v,
    f_cost_u,
    f_cost_v,
    f_edge,
    f_t,
    f_off,
    o_ptr,
    o_id,
    o_cost,
    o_ptr_edge,
    o_by_edge,
    o_t,
    o_off,
    limit,
    levels,
    counts,
):
    """Every origin within ``limit`` of each group: as pairs, or only counted.

    Parameters
    ----------
    indptr, indices, weights
        Symmetric CSR street graph (node ids ``0..n-1``, best in a spatial order: the
        searches then read nearby memory).
    groups
        Group ids to search from (a facility may be several attached points).
    group_ptr, f_*
        Attached facility points sorted by group; points of group ``g`` are
        ``group_ptr[g]:group_ptr[g + 1]``. ``f_cost_u``/``f_cost_v``: distance from the
        point to the ``u``/``v`` end of its edge.
    o_ptr, o_id, o_cost
        Origins by graph node, CSR-like and contiguous: the origins reached through
        node ``x`` are ``o_id[o_ptr[x]:o_ptr[x + 1]]``, each at ``o_cost`` from ``x``
        (an origin appears under both ends of its edge).
    o_ptr_edge, o_by_edge
        Origins by the edge they are attached to (CSR-like).
    o_t, o_off
        Origin position along its edge and offset.
    limit
        Largest distance kept; searches stop there.
    levels, counts
        Empty ``levels``: the pairs are returned. Otherwise nothing is returned and
        ``counts[o, k]`` is incremented for every group within ``levels[k]`` of origin
        ``o`` (the counts-only path: no pair is materialised).

    Returns
    -------
    tuple of ndarray
        ``origin``, ``group``, ``distance`` of every pair (empty in the counts mode).
    """
    n = len(indptr) - 1
    n_orig = len(o_t)
    dist = np.full(n, np.inf)
    touched = np.empty(n, dtype=np.int64)
    best = np.full(n_orig, np.inf)
    o_touched = np.empty(n_orig, dtype=np.int64)
    cap_heap = len(indices) + 2 * (np.max(np.diff(group_ptr)) if len(groups) else 0) + 1
    heap_d = np.empty(cap_heap)
    heap_n = np.empty(cap_heap, dtype=np.int64)
    n_levels = len(levels)
    cap = 1 if n_levels else 1 << 16
    out_o = np.empty(cap, dtype=np.int64)
    out_g = np.empty(cap, dtype=np.int64)
    out_d = np.empty(cap)
    n_out = 0
    for g in groups:
        n_touched = 0
        size = 0
        # seeds: both ends of each point's edge
        for p in range(group_ptr[g], group_ptr[g + 1]):
            for end in range(2):
                node = f_u[p] if end == 0 else f_v[p]
                c = f_cost_u[p] if end == 0 else f_cost_v[p]
                if c <= limit and c < dist[node]:
                    n_touched = _lower(dist, touched, n_touched, node, c)
                    size = _push(heap_d, heap_n, size, c, node)
        while size > 0:
            d, x, size = _pop(heap_d, heap_n, size)
            if d > dist[x]:
                continue  # stale entry
            for k in range(indptr[x], indptr[x + 1]):
                y = indices[k]
                nd = d + weights[k]
                if nd <= limit and nd < dist[y]:
                    n_touched = _lower(dist, touched, n_touched, y, nd)
                    size = _push(heap_d, heap_n, size, nd, y)
        # reached nodes -> the origins on their edges
        n_ot = 0
        for i in range(n_touched):
            x = touched[i]
            dx = dist[x]
            for j in range(o_ptr[x], o_ptr[x + 1]):
                o = o_id[j]
                c = dx + o_cost[j]
                if c < best[o]:
                    n_ot = _lower(best, o_touched, n_ot, o, c)
            dist[x] = np.inf
        # origins on the same edge as a point of the group: directly along the edge
        for p in range(group_ptr[g], group_ptr[g + 1]):
            e = f_edge[p]
            for j in range(o_ptr_edge[e], o_ptr_edge[e + 1]):
                o = o_by_edge[j]
                c = o_off[o] + abs(o_t[o] - f_t[p]) + f_off[p]
                if c < best[o]:
                    n_ot = _lower(best, o_touched, n_ot, o, c)
        if n_levels:  # counts only
            for i in range(n_ot):
                o = o_touched[i]
                b = best[o]
                for k in range(n_levels):
                    if b <= levels[k]:
                        counts[o, k] += 1
                best[o] = np.inf
            continue
        if n_out + n_ot > cap:
            while n_out + n_ot > cap:
                cap *= 2
            new_o = np.empty(cap, dtype=np.int64)
            new_g = np.empty(cap, dtype=np.int64)
            new_d = np.empty(cap)
            new_o[:n_out] = out_o[:n_out]
            new_g[:n_out] = out_g[:n_out]
            new_d[:n_out] = out_d[:n_out]
            out_o, out_g, out_d = new_o, new_g, new_d
        for i in range(n_ot):
            o = o_touched[i]
            if best[o] <= limit:
                out_o[n_out] = o
                out_g[n_out] = g
                out_d[n_out] = best[o]
                n_out += 1
            best[o] = np.inf
    return out_o[:n_out].copy(), out_g[:n_out].copy(), out_d[:n_out].copy()


@njit(cache=True, nogil=True)
def within_sums(origin, distance, k, n, scale):
    """Count and gravity sum ``exp(scale * d)`` per origin over the first ``k`` pairs.

    One pass, in pair order (so the sums equal ``np.bincount``'s, bit for bit).

    Parameters
    ----------
    origin, distance
        Origin and distance of each pair, sorted by distance: the pairs within a
        threshold are the first ``k``.
    k
        Pairs used.
    n
        Number of origins (length of the outputs).
    scale
        ``-beta``: the gravity weight of a pair is ``exp(scale * distance)``.

    Returns
    -------
    tuple of ndarray
        Count and gravity sum per origin (float64, length ``n``).

    Examples
    --------
    >>> origin = np.array([1, 0, 1, 2])
    >>> distance = np.array([0.0, 100.0, 200.0, 900.0])
    >>> count, gravity = within_sums(origin, distance, 3, 3, -0.01)
    >>> count.tolist(), gravity.round(4).tolist()
    ([1.0, 2.0, 0.0], [0.3679, 1.1353, 0.0])
    """
    count = np.zeros(n)
    gravity = np.zeros(n)
    for i in range(k):
        o = origin[i]
        count[o] += 1.0
        gravity[o] += np.exp(scale * distance[i])
    return count, gravity


@njit(cache=True, nogil=True)
def nearest_segments(px, py, ax, ay, bx, by, x0, y0, cell, nx, ny, cell_ptr, cell_seg):
    """The nearest segment of every point, through a uniform grid of segments.

    Parameters
    ----------
    px, py
        The points.
    ax, ay, bx, by
        Segment ends.
    x0, y0, cell, nx, ny
        The grid: origin, cell size and number of cells.
    cell_ptr, cell_seg
        Segments by cell (CSR-like; a segment is listed in every cell its bounding box
        touches).

    Returns
    -------
    tuple of ndarray
        Segment index, distance and position along the segment (0-1) of the nearest
        point, for each point; ties go to the lowest segment index.
    """
    n = len(px)
    seg = np.empty(n, dtype=np.int64)
    dist = np.empty(n)
    frac = np.empty(n)
    r_max = nx + ny + 2
    for i in range(n):
        x, y = px[i], py[i]
        cx = int(np.floor((x - x0) / cell))
        cy = int(np.floor((y - y0) / cell))
        # rings start where the grid starts for points outside it
        gap = max(0, -cx, cx - nx + 1, -cy, cy - ny + 1)
        best, best_s, best_f = np.inf, -1, 0.0
        r = gap
        while r <= r_max + gap:
            for gx in range(cx - r, cx + r + 1):
                if gx < 0 or gx >= nx:
                    continue
                step = 1 if (gx == cx - r or gx == cx + r) else 2 * r
                gy = cy - r
                while gy <= cy + r:
                    if 0 <= gy < ny:
                        c = gx * ny + gy
                        for k in range(cell_ptr[c], cell_ptr[c + 1]):
                            s = cell_seg[k]
                            vx = bx[s] - ax[s]
                            vy = by[s] - ay[s]
                            l2 = vx * vx + vy * vy
                            f = 0.0
                            if l2 > 0:
                                f = ((x - ax[s]) * vx + (y - ay[s]) * vy) / l2
                                f = min(1.0, max(0.0, f))
                            qx = ax[s] + f * vx - x
                            qy = ay[s] + f * vy - y
                            d = np.sqrt(qx * qx + qy * qy)
                            if d < best or (d == best and s < best_s):
                                best, best_s, best_f = d, s, f
                    gy += step if step > 0 else 1
            # anything in the next rings is at least r cells away
            if best_s >= 0 and best <= r * cell:
                break
            r += 1
        seg[i] = best_s
        dist[i] = best
        frac[i] = best_f
    return seg, dist, frac
