"""The baseline cache (issue 12, items 1 and 2): key, entries, re-scoring."""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bxlplan.errors import ConfigError
from bxlplan.scoring import cache as bc
from bxlplan.scoring.scores import scoring_config

from .conftest import pack_without


def _key(folder: Path, config: dict | None = None, **kw) -> str:
    return bc.baseline_key(folder, config or scoring_config(), **kw)[0]


# ----------------------------------------------------------------------------- key
def test_key_follows_inputs_catalog_and_preparation_settings(
    pack, tmp_path, monkeypatch
):
    """An input file's content, a catalog entry or a preparation key changes the key;
    weights, rules and the population floor do not."""
    monkeypatch.delenv("BXLPLAN_LAYERS", raising=False)
    data = pack_without(pack, tmp_path)  # symlinks, no copies
    base = scoring_config()
    key = _key(data, base)
    assert key == _key(data, base)  # deterministic
    assert len(key) == 64

    # one input file's content: the income table with one value changed
    rel = "socio/ibsa_2498_median_equivalised_income_2023.csv"
    text = (pack / rel).read_text(encoding="utf-8")
    (data / rel).unlink()
    (data / rel).write_text(text + "\n", encoding="utf-8")
    changed = _key(data, base)
    assert changed != key
    (data / rel).unlink()
    (data / rel).symlink_to(pack / rel)
    assert _key(data, base) == key

    # a catalog entry: a user catalog folder replacing facilities.yaml
    extra = tmp_path / "catalog"
    extra.mkdir()
    shipped = bc._catalog_files()  # noqa: SLF001 - the shipped catalog's hashes
    from bxlplan.loading.catalog import catalog_dir

    fac = (catalog_dir() / "facilities.yaml").read_text(encoding="utf-8")
    (extra / "facilities.yaml").write_text(
        fac.replace("dedupe_m: 25", "dedupe_m: 30"), encoding="utf-8"
    )
    monkeypatch.setenv("BXLPLAN_LAYERS", str(extra))
    assert bc._catalog_files()["facilities.yaml"] != shipped["facilities.yaml"]
    assert _key(data, base) != key
    monkeypatch.delenv("BXLPLAN_LAYERS")

    # preparation keys of the scoring file change it ...
    for k, v in [("origins_cell_m", 200.0), ("gravity_beta_at_threshold", 3.0),
                 ("activity_mix_distance_m", 600.0), ("income_classes", 4),
                 ("access_search_factor", 2.0)]:  # fmt: skip
        assert _key(data, {**base, k: v}) != key, k
    assert _key(data, base, distance="euclidean") != key
    # ... the scoring-only keys do not: the entry is reused, only re-scored
    weights = {w: 1.0 + i for i, w in enumerate(base["weights"])}
    scoring_only = {**base, "weights": weights, "population_floor": 50.0,
                    "landuse_unmapped_max": 0.8,
                    "thresholds": {"pharmacy": 600}}  # re-derived on a hit  # fmt: skip
    assert _key(data, scoring_only) == key

    # a user population file enters by its content
    pop = tmp_path / "pop.csv"
    pop.write_text("population\n1\n")
    with_pop = _key(data, base, population=pop)
    assert with_pop != key
    pop.write_text("population\n2\n")
    assert _key(data, base, population=pop) != with_pop


# ------------------------------------------------------------------------- entries
@dataclasses.dataclass
class Fake:
    """A small stand-in for a context."""

    value: int
    config: dict
    categories: dict = dataclasses.field(default_factory=dict)


def _builder(value: int = 7):
    calls = []

    def build():
        calls.append(1)
        return Fake(value, {})

    return build, calls


def test_entry_round_trip_and_corruption_is_rebuilt(tmp_path, caplog):
    key = "a" * 64
    build, calls = _builder()
    obj, hit = bc.get_or_build(tmp_path, key, build)
    assert (obj, hit, len(calls)) == (Fake(7, {}), False, 1)
    obj, hit = bc.get_or_build(tmp_path, key, build)
    assert (obj, hit, len(calls)) == (Fake(7, {}), True, 1)
    path = bc.entry_path(tmp_path, key)
    assert path.stat().st_mode & 0o077 == 0  # private to the user
    assert [e.status for e in bc.entries(tmp_path)] == ["ok"]

    # a truncated file: one warning, rebuilt, written again whole
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5])
    assert bc.entries(tmp_path)[0].status == "truncated"
    with caplog.at_level(logging.WARNING, logger="bxlplan.scoring.cache"):
        obj, hit = bc.get_or_build(tmp_path, key, build)
    assert not hit and len(calls) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        len(warnings) == 1
        and "truncated" in warnings[0]
        and "rebuilding" in warnings[0]
    )
    assert path.read_bytes() == data

    # a flipped payload byte: the sha256 refuses it before unpickling
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bxlplan.scoring.cache"):
        assert bc.read_entry(tmp_path, key) is None
    assert "sha256" in caplog.text

    # not a cache file at all
    path.write_bytes(b"garbage")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bxlplan.scoring.cache"):
        assert bc.read_entry(tmp_path, key) is None
    assert "corrupt" in caplog.text


def test_entry_of_another_version_is_refused_and_rebuilt(tmp_path, caplog):
    key = "b" * 64
    build, calls = _builder()
    bc.get_or_build(tmp_path, key, build)
    path = bc.entry_path(tmp_path, key)
    magic, head, payload = path.read_bytes().split(b"\n", 2)
    header = json.loads(head)
    header["bxlplan_version"] = "0.0.1"
    path.write_bytes(magic + b"\n" + json.dumps(header).encode() + b"\n" + payload)
    assert bc.entries(tmp_path)[0].status.startswith(
        "incompatible: built by bxlplan 0.0.1"
    )
    with caplog.at_level(logging.WARNING, logger="bxlplan.scoring.cache"):
        obj, hit = bc.get_or_build(tmp_path, key, build)
    assert not hit and len(calls) == 2
    assert "refused: built by bxlplan 0.0.1" in caplog.text
    assert (
        json.loads(path.read_bytes().split(b"\n", 2)[1])["bxlplan_version"] != "0.0.1"
    )


def test_entry_writable_by_others_is_not_loaded(tmp_path, caplog):
    key = "c" * 64
    bc.write_entry(tmp_path, key, Fake(1, {}))
    bc.entry_path(tmp_path, key).chmod(0o666)
    with caplog.at_level(logging.WARNING, logger="bxlplan.scoring.cache"):
        assert bc.read_entry(tmp_path, key) is None
    assert "writable by other users" in caplog.text


def test_clear_removes_only_entries(tmp_path):
    bc.write_entry(tmp_path, "d" * 64, Fake(1, {}))
    (tmp_path / f".{bc.PREFIX}{'e' * 64}{bc.SUFFIX}.x1.part").write_bytes(b"half")
    (tmp_path / "notes.txt").write_text("mine")
    gone = bc.clear(tmp_path)
    assert len(gone) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_cache_folder_choices(tmp_path, monkeypatch):
    assert bc.cache_folder(None) is None and bc.cache_folder(False) is None
    monkeypatch.setenv("BXLPLAN_CACHE", str(tmp_path / "c"))
    assert bc.cache_folder(True) == tmp_path / "c"
    monkeypatch.delenv("BXLPLAN_CACHE")
    assert bc.cache_folder(True).name == "bxlplan"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        bc.cache_folder(tmp_path / "file")


def test_prepare_uses_the_cache_and_rescores(pack, tmp_path, monkeypatch):
    """prepare(cache=...) builds once per key and swaps in the scoring-only settings."""
    import importlib

    mod = importlib.import_module("bxlplan.scoring.baseline")
    calls = []

    def fake(_folder, config, *_rest):
        calls.append(config)
        return Fake(len(calls), config)

    monkeypatch.setattr(mod, "_prepare", fake)
    base = scoring_config()
    first = mod.prepare(pack, config=base, cache=tmp_path)
    assert len(calls) == 1 and first.value == 1
    reweighted = {**base, "weights": dict.fromkeys(base["weights"], 2.0)}
    again = mod.prepare(pack, config=reweighted, cache=tmp_path)
    assert len(calls) == 1 and again.value == 1 and again.config == reweighted
    mod.prepare(pack, config={**base, "origins_cell_m": 200.0}, cache=tmp_path)
    assert len(calls) == 2
    mod.prepare(pack, config=base)  # the library uses no cache unless asked
    assert len(calls) == 3
    assert len(bc.entries(tmp_path)) == 2


# ------------------------------------------------------------------- re-scoring
@pytest.mark.slow
def test_rescoring_from_the_cache_equals_a_cold_run(pack, pack_layers, ctx, tmp_path):
    """New weights, rules, floor and thresholds on a cached (pickled) context score
    exactly as a cold preparation with them: the cache hit of prepare() swaps the
    scoring-only keys in and re-derives the thresholds from the stored pairs."""
    from bxlplan.loading.areas import load_areas
    from bxlplan.scoring import assess, prepare

    from .conftest import ASSESSMENT_LAYERS

    base = scoring_config()
    new = json.loads(json.dumps(base))
    new["weights"] = {w: float(i + 1) for i, w in enumerate(base["weights"])}
    new["population_floor"] = 1000.0
    new["landuse_unmapped_max"] = 0.3
    new["rules"]["income_position"]["span"] = 3.0
    # shorter and longer (up to the search limit, 1.5 x the catalog's) thresholds
    new["thresholds"] = {"pharmacy": 600, "transit_stop": 550, "hospital": 2000}
    key = bc.baseline_key(pack, base)[0]
    assert bc.baseline_key(pack, new)[0] == key

    bc.write_entry(tmp_path, key, ctx)
    cached = bc.read_entry(tmp_path, key)
    assert cached is not None
    cold = prepare(
        pack, config=new, layers={n: pack_layers[n] for n in ASSESSMENT_LAYERS}
    )
    areas = load_areas("communes", pack)
    warm = prepare(pack, config=new, cache=tmp_path)  # a hit: nothing is searched
    assert warm.categories == cold.categories
    assert warm.categories["pharmacy"]["threshold_m"] == 600
    for cat, a in cold.access.items():
        w = warm.access[cat]
        for name in ("nearest", "count", "gravity", "count_mix"):
            np.testing.assert_array_equal(getattr(w, name), getattr(a, name))
        pd.testing.assert_frame_equal(w.pairs, a.pairs, check_exact=True)
    warm_result = assess(areas, warm)
    assert "access_pharmacy_within_600m_share" in warm_result.areas
    cold_result = assess(areas, cold)
    pd.testing.assert_frame_equal(
        warm_result.areas.drop(columns="geometry"),
        cold_result.areas.drop(columns="geometry"),
        check_exact=True,
    )
    pd.testing.assert_frame_equal(
        warm_result.shortage_zones, cold_result.shortage_zones, check_exact=True
    )
    assert warm_result.areas["score_overall"].notna().any()
    # and the new settings did change the scores (the test can fail)
    default = assess(areas, cached).areas["score_overall"]
    assert not default.equals(warm_result.areas["score_overall"])
    assert pickle.loads(pickle.dumps(cached)).config == ctx.config


def test_cli_cache_info_and_clear(tmp_path):
    from typer.testing import CliRunner

    from bxlplan.cli import app

    bc.write_entry(tmp_path, "9" * 64, Fake(1, {}), {"data": "/some/pack"})
    runner = CliRunner()
    info = runner.invoke(app, ["cache", "info", "--cache", str(tmp_path)])
    assert info.exit_code == 0, info.output
    assert "1 entry" in info.output and "999999999999" in info.output
    assert "ok" in info.output
    cleared = runner.invoke(app, ["cache", "clear", "--cache", str(tmp_path)])
    assert cleared.exit_code == 0 and "removed 1 file(s)" in cleared.output
    assert bc.entries(tmp_path) == []
    (tmp_path / "f").write_text("x")
    bad = runner.invoke(app, ["cache", "info", "--cache", str(tmp_path / "f")])
    assert bad.exit_code == 2 and "is a file, not a folder" in bad.output
