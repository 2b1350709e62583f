"""Building the walkable graph from line layers (hand-made lines)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from bxlplan.loading.network import edges_from_lines, network_matrix, network_nodes

X0, Y0 = 148000.0, 169000.0


def line(*pts):
    return shapely.LineString([(X0 + x, Y0 + y) for x, y in pts])


def test_crossing_lines_are_noded():
    edges = edges_from_lines(
        np.array([line((0, 0), (100, 0)), line((50, -50), (50, 50))])
    )
    assert len(edges) == 4
    assert len(network_nodes(edges)) == 5
    assert edges["length"].sum() == pytest.approx(200)


def test_overlapping_segments_are_merged():
    # a way and a relation member sharing 60 m: the shared part counts once
    edges = edges_from_lines(
        np.array([line((0, 0), (100, 0)), line((40, 0), (160, 0))])
    )
    assert edges["length"].sum() == pytest.approx(160)


def test_largest_component_kept_and_reported():
    report: list[str] = []
    lines = np.array(
        [line((0, 0), (1000, 0)), line((0, 500), (10, 500)), None], dtype=object
    )
    edges = edges_from_lines(lines, report)
    assert edges["length"].sum() == pytest.approx(1000)
    net = edges.attrs["network"]
    assert net["components"] == 2 and net["dropped_edges"] == 1
    assert net["largest_component_share"] == pytest.approx(1000 / 1010)
    assert "dropped 1 edges" in report[0]


def test_closed_loop_is_kept():
    ring = line((0, 0), (0, 50), (50, 50), (50, 0), (0, 0))
    edges = edges_from_lines(np.array([ring, line((0, 0), (-100, 0))]))
    assert edges["length"].sum() == pytest.approx(300)


def test_matrix_keeps_shortest_parallel_edge():
    edges = edges_from_lines(
        np.array([line((0, 0), (100, 0)), line((0, 0), (50, 80), (100, 0))])
    )
    mat = network_matrix(edges)
    nodes = network_nodes(edges)
    a = int(np.argmin(np.hypot(nodes.x - X0, nodes.y - Y0)))
    b = int(np.argmin(np.hypot(nodes.x - X0 - 100, nodes.y - Y0)))
    assert mat[a, b] == pytest.approx(100)


# ------------------------------------------------ coverage of a user's network
@pytest.mark.slow
def test_network_serving_one_commune_is_refused_before_the_access(
    pack, pack_layers, monkeypatch
):
    """A street layer clipped to one commune is refused (DataError naming the layer,
    the commune it serves and those it does not) before any access is computed."""
    import bxlplan.scoring.baseline as baseline
    from bxlplan.errors import DataError

    from .conftest import ASSESSMENT_LAYERS

    def never(*_a, **_k):
        raise AssertionError("the access computation must not start")

    monkeypatch.setattr(baseline, "compute_access", never)
    communes = pack_layers["communes"]
    ixelles = communes.loc[communes["name_fr"] == "Ixelles"].geometry.iloc[0]
    streets = pack_layers["streets"]
    clipped = streets[streets.intersects(ixelles)].copy()
    clipped.attrs = {"bxlplan": {"source": "streets clipped to Ixelles"}}
    layers = {n: pack_layers[n] for n in ASSESSMENT_LAYERS} | {"streets": clipped}
    with pytest.raises(DataError) as err:
        baseline.prepare(pack, layers=layers)
    msg = str(err.value)
    assert "layer 'streets' (streets clipped to Ixelles)" in msg
    assert "serves 1 of 19 inhabited communes (Ixelles); not Anderlecht" in msg
    assert "--distance euclidean" in msg


@pytest.mark.slow
def test_coverage_of_the_pack_network(ctx):
    """The pack's own network serves every commune (the check passes on it)."""
    from bxlplan.scoring.baseline import check_network_coverage

    table = check_network_coverage(ctx.graph, ctx.origins, ctx.communes)
    assert len(table) == 19 and table["covered"].all()
    assert table["served_share"].min() > 0.99
