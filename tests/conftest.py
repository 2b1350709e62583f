"""Shared fixtures: the reference data pack and small hand-made layers."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

ROOT = Path(__file__).resolve().parent.parent


def _pack() -> Path | None:
    env = os.environ.get("BXLPLAN_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data" / "brussels"
    return path if (path / "MANIFEST.md").is_file() else None


@pytest.fixture(scope="session")
def pack() -> Path:
    """The reference data pack; CI sets BXLPLAN_REQUIRE_PACK=1 so it never skips there."""
    path = _pack()
    if path is None:
        if os.environ.get("BXLPLAN_REQUIRE_PACK"):
            pytest.fail("the reference data pack is required (BXLPLAN_DATA) but absent")
        pytest.skip(
            "reference data pack absent: set BXLPLAN_DATA to run real-data tests"
        )
    return path


@pytest.fixture(scope="session")
def pack_layers(pack: Path) -> dict:
    """Layers of the pack loaded once for the whole session."""
    import bxlplan

    class Layers(dict):
        def __missing__(self, name: str):
            self[name] = bxlplan.load(name, pack)
            return self[name]

    return Layers()


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """CLI tests never write into the user's cache; one shared cache per session."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BXLPLAN_CACHE", str(tmp_path_factory.mktemp("bxlplan-cache")))
    yield
    mp.undo()


def pack_without(pack: Path, tmp_path: Path, *missing: str) -> Path:
    """A data folder of symlinks to the pack (no copies), less the ``missing`` files."""
    folder = tmp_path / "data"
    for src in pack.rglob("*"):
        if src.is_file() and str(src.relative_to(pack)) not in missing:
            dst = folder / src.relative_to(pack)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src)
    return folder


def square(x: float, y: float, size: float) -> shapely.Polygon:
    return shapely.box(x, y, x + size, y + size)


@pytest.fixture
def tiny_units() -> gpd.GeoDataFrame:
    """Two 1 km squares in central Brussels (EPSG:31370)."""
    return gpd.GeoDataFrame(
        {"mdrc": [1, 2], "name_fr": ["Un", "Deux"], "name_nl": ["Een", "Twee"]},
        geometry=[square(148000, 169000, 1000), square(149000, 169000, 1000)],
        crs="EPSG:31370",
    )


ASSESSMENT_LAYERS = ["region", "communes", "neighbourhoods", "green_spaces", "landuse_osm",
                     "population_sectors", "population_communes", "income_equivalised",
                     "poverty_communes", "facilities", "streets"]  # fmt: skip


@pytest.fixture(scope="session")
def ctx(pack, pack_layers):
    """A prepared assessment context on the pack, shared by the slow tests."""
    from bxlplan.scoring import prepare

    return prepare(pack, layers={n: pack_layers[n] for n in ASSESSMENT_LAYERS})
