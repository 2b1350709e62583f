"""Your own facilities: only a category and points are needed, bad ones are refused
with a located message before any work (issue 13: a raw KeyError came after 19 s)."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from bxlplan.errors import DataError
from bxlplan.loading.facilities import categories
from bxlplan.scoring import facility_table


def _points(**cols) -> gpd.GeoDataFrame:
    n = len(next(iter(cols.values())))
    return gpd.GeoDataFrame(
        cols, geometry=[shapely.Point(4.35 + i / 1000, 50.84) for i in range(n)],
        crs="EPSG:4326",
    )  # fmt: skip


def test_category_and_points_are_enough():
    out = facility_table(_points(category=["pharmacy", "library"]), categories())
    assert list(out["facility_id"]) == ["user:0", "user:1"]
    assert out.crs.to_epsg() == 31370 and list(out["name"]) == ["", ""]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_points(kind=["pharmacy"]), "'category' column is missing; columns: kind"),
        (_points(category=["unicorns"]), r"unknown categories \['unicorns'\]"),
        (
            gpd.GeoDataFrame(
                {"category": ["library"]},
                geometry=[shapely.box(0, 0, 1, 1)],
                crs=31370,
            ),  # fmt: skip
            "geometries must be points, found Polygon",
        ),
        (
            gpd.GeoDataFrame({"category": ["library"]}, geometry=[shapely.Point(1, 1)]),
            "with a CRS",
        ),
    ],
)
def test_bad_facilities_are_refused(frame, message):
    with pytest.raises(DataError, match=message):
        facility_table(frame, categories())
