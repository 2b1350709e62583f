"""The Examples sections of the docstrings run, and say what the functions return.

What ``pytest --doctest-modules`` does, for the modules whose examples need no data
pack (tiny inline data only), with the same option flags.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "bxlplan.errors",
    "bxlplan._io",
    "bxlplan._yaml",
    "bxlplan._outputs",
    "bxlplan.loading.catalog",
    "bxlplan.loading.check",
    "bxlplan.loading.expect",
    "bxlplan.loading.fetch",
    "bxlplan.loading.population",
    "bxlplan.loading.provenance",
    "bxlplan.loading.readers",
    "bxlplan.loading.transit",
    "bxlplan.loading.validate",
    "bxlplan.indicators.diversity",
    "bxlplan.indicators.social",
    "bxlplan.indicators.registry",
    "bxlplan.scoring.scores",
    "bxlplan.exports.gis",
    "bxlplan.exports.labels",
    "bxlplan.exports.qgis",
    "bxlplan.scenarios.report",
    "bxlplan.scenarios.outputs",
    "bxlplan.exports.change",
    "bxlplan.exports.maps",
    "bxlplan.exports.basemap",
    "bxlplan.scoring.origins",
]

FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name, monkeypatch):
    monkeypatch.delenv("BXLPLAN_LAYERS", raising=False)  # the shipped catalog only
    monkeypatch.delenv("BXLPLAN_DATA", raising=False)  # and no data pack
    module = importlib.import_module(name)
    failed, attempted = doctest.testmod(module, optionflags=FLAGS, report=False)
    assert attempted > 0, f"{name} has no example"
    assert failed == 0, f"{failed} of {attempted} examples of {name} fail (see above)"


@pytest.mark.parametrize("name", MODULES)
def test_every_public_function_has_an_example(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder()
    tested = {t.name.rsplit(".", 1)[-1] for t in finder.find(module) if t.examples}
    lacking = []
    for attr in getattr(module, "__all__", []):
        obj = getattr(module, attr)
        if getattr(obj, "__module__", name) != name:
            continue  # re-exported: its own module shows it
        if callable(obj) and not isinstance(obj, type) and attr not in tested:
            lacking.append(attr)
    assert not lacking, f"{name}: no example for {', '.join(lacking)}"
