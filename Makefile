# bxlplan: `make run` sets everything up and runs the main job on the reference data;
# `make test` runs the test suite. Both create the environment on first use.
PYTHON ?= python3
VENV ?= .venv
BXLPLAN_DATA ?= ../shared/data/brussels
OUT ?= out
export BXLPLAN_DATA

BIN := $(VENV)/bin

.PHONY: setup run test lint bench dist clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# Leaflet and its plugins, inlined into offline maps (package-lock.json pins them)
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

run: setup
	$(BIN)/bxlplan check --data $(BXLPLAN_DATA) --out $(OUT)
	$(BIN)/bxlplan assess --units neighbourhoods --data $(BXLPLAN_DATA) --out $(OUT)/neighbourhoods \
		--format gpkg,geojson,shp,csv,tif --overwrite
	$(BIN)/bxlplan map $(OUT)/neighbourhoods/assessment.gpkg --offline --lang fr \
		--out $(OUT)/neighbourhoods/map_fr.html --overwrite
	$(BIN)/bxlplan map $(OUT)/neighbourhoods/assessment.gpkg --offline --lang nl \
		--out $(OUT)/neighbourhoods/map_nl.html --overwrite
	$(BIN)/bxlplan scenario run scenarios/*.yaml --data $(BXLPLAN_DATA) --out $(OUT)/scenarios --overwrite
	$(BIN)/bxlplan scenario compare scenarios/josaphat.yaml scenarios/josaphat_more_social.yaml \
		--data $(BXLPLAN_DATA) --out $(OUT)/scenarios --overwrite

test: setup
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	$(BIN)/pytest

bench: setup
	$(BIN)/python benchmarks/bench_access.py
	$(BIN)/python benchmarks/bench_maps.py
	$(BIN)/python benchmarks/bench_iteration.py
	$(BIN)/python benchmarks/bench_robustness.py
	$(BIN)/python benchmarks/bench_scenarios.py

# a wheel and an sdist that carry the map assets (hatch_build.py)
dist: setup
	$(BIN)/python -m build

clean:
	rm -rf $(OUT) .pytest_cache
