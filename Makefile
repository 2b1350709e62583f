# bxlplan: `make run` sets everything up and runs the main job on the reference data;
# `make test` runs the test suite. Both create the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BXLPLAN_DATA ?= ../shared/data/brussels
OUT ?= out
export BXLPLAN_DATA

BIN := $(VENV)/bin

.PHONY: setup run test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: setup
	$(BIN)/bxlplan check --data $(BXLPLAN_DATA) --out $(OUT)
	$(BIN)/bxlplan assess --units neighbourhoods --data $(BXLPLAN_DATA) --out $(OUT)/neighbourhoods --overwrite

test: setup
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/pytest

bench: setup
	$(BIN)/python benchmarks/bench_access.py

clean:
	rm -rf $(OUT) .pytest_cache
