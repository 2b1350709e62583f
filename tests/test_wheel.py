"""The built wheel works alone (issue 11, item 6): it carries Leaflet and its plugins
with their licences, and a fresh virtualenv with only ``pip install bxlplan-*.whl`` (no
npm, no checkout in sight) draws an offline map.

The distributions are built the way a release is: ``python -m build`` makes the sdist
from the checkout (whose ``node_modules/`` the hook copies), then the wheel *from the
sdist*, with an ``npm`` on PATH that fails if called: so the sdist alone is enough to
build a working wheel.

The fresh virtualenv gets the wheel *and its dependencies from the package index*, as
a user's would (about 1-2 minutes and 1 GB in tmp, a few minutes on a slow network).
Installing the wheel with ``--no-deps`` over the project's own environment would be
faster but would not be a fresh environment: the editable bxlplan and the checkout's
``node_modules`` would be one mistake away, and the wheel's declared dependencies would
go untested. ``scenario run`` needs the whole data pack and a long preparation, so the
fresh environment checks only that it resolves the assets to the packaged copies (the
same call ``scenario run``'s maps make).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from bxlplan.errors import BxlplanError
from bxlplan.exports import offline
from bxlplan.exports.offline import ASSETS

ROOT = Path(__file__).resolve().parent.parent
IMAGES = [  # referred to by leaflet.css, inlined as data: URIs
    "leaflet/dist/images/layers.png",
    "leaflet/dist/images/layers-2x.png",
    "leaflet/dist/images/marker-icon.png",
]
LICENCES = ["leaflet/LICENSE", "leaflet.markercluster/MIT-LICENCE.txt"]


def test_explicit_assets_folder_must_hold_leaflet(tmp_path, monkeypatch):
    monkeypatch.setenv("BXLPLAN_ASSETS", str(tmp_path))
    with pytest.raises(BxlplanError, match="BXLPLAN_ASSETS=.* lacks leaflet/dist"):
        offline.asset_dir()


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("timeout", 900)
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert out.returncode == 0, (
        f"{cmd} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    )
    return out


def _clean_env(**extra: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("BXLPLAN_ASSETS", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    return {**env, **extra}


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("dist")
    fake = tmp / "bin"
    fake.mkdir()
    (fake / "npm").write_text("#!/bin/sh\necho 'npm must not be needed' >&2\nexit 97\n")
    (fake / "npm").chmod(0o755)
    out = tmp / "dist"
    env = _clean_env(PATH=f"{fake}{os.pathsep}{os.environ['PATH']}")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], env=env)
    (wheel,) = out.glob("bxlplan-*.whl")
    (sdist,) = out.glob("bxlplan-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.mark.slow
def test_distributions_carry_the_map_assets_and_licences(dists):
    names = zipfile.ZipFile(dists["wheel"]).namelist()
    for rel in [*ASSETS.values(), *IMAGES, *LICENCES]:
        assert f"bxlplan/_assets/{rel}" in names
    assert "bxlplan/_catalog/labels.yaml" in names  # force-include of layers/ kept
    assert not [n for n in names if "node_modules" in n]
    with tarfile.open(dists["sdist"]) as tar:
        members = [m.split("/", 1)[1] for m in tar.getnames() if "/" in m]
    for rel in [*ASSETS.values(), *IMAGES, *LICENCES]:
        assert f"map_assets/{rel}" in members
    assert not [n for n in members if "node_modules" in n]


def _assessment(path: Path) -> Path:
    """A tiny assessment.gpkg: three scored squares and a few facilities, in Brussels."""
    x, y = 148_000, 170_000
    areas = gpd.GeoDataFrame(
        {
            "area_id": ["a", "b", "c"],
            "name_fr": ["Quartier A", "Quartier B", "Quartier C"],
            "name_nl": ["Wijk A", "Wijk B", "Wijk C"],
            "score_overall": [35.0, 60.0, 82.5],
        },
        geometry=[
            shapely.box(x + i * 500, y, x + i * 500 + 500, y + 500) for i in range(3)
        ],
        crs=31370,
    )
    facilities = gpd.GeoDataFrame(
        {
            "category": ["library", "library", "school_primary"],
            "name": ["B1", "B2", "S"],
        },
        geometry=[shapely.Point(x + 100 + i * 400, y + 250) for i in range(3)],
        crs=31370,
    )
    areas.to_file(path, layer="areas", driver="GPKG")
    facilities.to_file(path, layer="facilities", driver="GPKG")
    return path


@pytest.mark.slow
def test_fresh_virtualenv_with_only_the_wheel_draws_an_offline_map(dists, tmp_path):
    venv = tmp_path / "venv"
    work = tmp_path / "work"  # cwd: no node_modules here, none beside the install
    work.mkdir()
    env = _clean_env()
    _run([sys.executable, "-m", "venv", str(venv)], env=env)
    py, cli = venv / "bin" / "python", venv / "bin" / "bxlplan"
    _run([str(py), "-m", "pip", "install", "-q", str(dists["wheel"])], env=env)

    # the installed wheel, not the checkout, and its packaged assets
    probe = _run(
        [str(py), "-c",
         "import bxlplan; from bxlplan.exports.offline import asset_dir; "
         "print(bxlplan.__file__); print(asset_dir())"],
        cwd=work, env=env,
    ).stdout.split("\n")  # fmt: skip
    package = Path(probe[0]).parent
    assert package.is_relative_to(venv), probe
    assert Path(probe[1]) == package / "_assets"

    gpkg = _assessment(work / "assessment.gpkg")
    _run(
        [str(cli), "map", str(gpkg), "--offline", "--out", "map.html"],
        cwd=work,
        env=env,
    )
    page = (work / "map.html").read_text(encoding="utf-8")
    assert "Leaflet 1.9.4" in page  # leaflet.js's own header, inlined
    assert "MarkerClusterGroup" in page  # the plugin, inlined
    assert "url(data:image/png;base64," in page  # the layer-control icon
    assert "Quartier B" in page
    assert "<script src=" not in page
    assert not re.search(r'<(script|img|iframe)[^>]+src="https?://', page)
    assert not re.search(r'<link[^>]+href="https?://', page)

    # without the packaged copies the error says what to do for this kind of install
    (package / "_assets").rename(package / "_assets_gone")
    failed = subprocess.run(
        [str(cli), "map", str(gpkg), "--offline", "--out", "map2.html"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert failed.returncode == 2
    message = " ".join(failed.stdout.split() + failed.stderr.split())
    assert "Installed with pip" in message and "npm ci" in message
    assert not (work / "map2.html").exists()
