"""No silent substitution of inputs (issue 9, item 4).

A fallback candidate of the catalog (``files[].fallback``) is used only when the files
before it are missing, only if it passes the same plausibility checks as
``bxlplan check``, and its use is announced and recorded in the provenance.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

import bxlplan
from bxlplan.errors import DataError
from bxlplan.loading.catalog import get_spec
from bxlplan.loading.check import check_data
from bxlplan.loading.expect import implausibilities, require_plausible

from .conftest import pack_without

pytestmark = pytest.mark.pack


def test_one_commune_network_is_not_a_silent_substitute(pack: Path, tmp_path: Path):
    data = pack_without(pack, tmp_path, "network/named_streets_2021-04-12.gpkg")
    with pytest.raises(DataError) as err:
        bxlplan.load("streets", data)
    msg = str(err.value)
    assert "city_of_brussels_drive_osmnx" in msg and "fallback" in msg
    assert "named_streets_2021-04-12.gpkg is missing" in msg
    assert "length_km" in msg  # says which check failed


def test_check_reports_the_refused_fallback(pack: Path, tmp_path: Path):
    data = pack_without(pack, tmp_path, "network/named_streets_2021-04-12.gpkg")
    streets = next(r for r in check_data(data) if r.layer == "streets")
    assert streets.status == "broken" and streets.failed
    assert "length_km" in " ".join(streets.messages)


def test_plausible_fallback_is_announced_and_recorded(
    pack: Path, caplog: pytest.LogCaptureFixture
):
    # the pack has only the approximate ZRU file, a declared fallback
    with caplog.at_level(logging.WARNING, logger="bxlplan"):
        zru = bxlplan.load("zru", pack)
    meta = zru.attrs["bxlplan"]
    assert meta["fallback"]["instead_of"] == ["official/zru_2026.geojson"]
    assert "approximate" in meta["fallback"]["reason"]
    assert any("is a fallback" in r.getMessage() for r in caplog.records)
    assert any("is a fallback" in line for line in meta["report"])


def test_equivalent_candidates_are_not_announced(
    pack: Path, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.WARNING, logger="bxlplan"):
        hoods = bxlplan.load("neighbourhoods", pack)
    assert "fallback" not in hoods.attrs["bxlplan"]
    assert not caplog.records


def test_prepare_refuses_an_implausible_layer_before_working(pack: Path, tmp_path):
    from bxlplan.scoring import prepare

    data = pack_without(pack, tmp_path, "network/named_streets_2021-04-12.gpkg")
    with pytest.raises(DataError, match="not plausible"):
        prepare(data)


def test_implausibilities_name_the_range():
    table = pd.DataFrame({"code": range(3), "value": [1.0, 2.0, 3.0]})
    table.attrs["bxlplan"] = {"source": "pop.csv"}
    spec = get_spec("population_communes")
    problems = implausibilities(spec, table)
    assert any(p.startswith("rows = 3 is outside") for p in problems)
    with pytest.raises(DataError, match=r"population_communes' \(pop.csv\)"):
        require_plausible(spec, table)
