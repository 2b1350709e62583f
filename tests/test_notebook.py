"""examples/assess_a_pole.ipynb: committed without outputs, and it runs on the pack.

The notebook is executed with nbclient in a ``python3`` kernel (ipykernel); jupyter_client
starts a kernel whose command is ``python`` with ``sys.executable``, so the kernel runs
the test's own interpreter (the venv's), whichever ``python`` is first on PATH.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "assess_a_pole.ipynb"


def _read():
    nbformat = pytest.importorskip("nbformat")
    return nbformat.read(NOTEBOOK, as_version=4)


def test_notebook_is_committed_stripped():
    nb = _read()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "the notebook has no code cell"
    for i, cell in enumerate(code):
        assert cell.outputs == [], f"code cell {i} has stored outputs: strip them"
        assert cell.execution_count is None, f"code cell {i} has an execution count"
    assert "widgets" not in nb.metadata, "stored widget state: strip it"


@pytest.mark.slow
@pytest.mark.pack
def test_notebook_runs_on_the_pack(pack, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    nb = _read()
    # the kernel inherits this environment: the pack, a scratch output folder, no GUI
    monkeypatch.setenv("BXLPLAN_DATA", str(pack))
    monkeypatch.setenv("BXLPLAN_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # one extra cell, in memory only: which interpreter runs the kernel
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    client = nbclient.NotebookClient(
        nb,
        timeout=600,  # per cell; the preparation takes 20-40 s, the scenario ~30 s
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT)}},  # working directory: repo root
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors
    stderr = "".join(
        o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"
    )
    assert "Traceback" not in stderr, stderr
    html = [o.data.get("text/html", "") for o in outputs if "data" in o]
    assert any("bxlplan Assessment" in h for h in html), "no assessment summary"
    assert sum("<table" in h for h in html) >= 4, "too few tables"
    assert any("leaflet" in h.lower() for h in html), "no inline map"
    assert any("image/png" in o.get("data", {}) for o in outputs), "no plot"
    saved = tmp_path / "josaphat_map.html"
    assert saved.is_file() and saved.stat().st_size > 10_000
    page = saved.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link)[^>]+(src|href)=[\"']?https?://", page), (
        "the offline map loads something from the network"
    )
    # the kernel ran the interpreter running the tests (the venv's)
    kernel_python = nb.cells[-1].outputs[0].text.strip()
    assert os.path.realpath(kernel_python) == os.path.realpath(sys.executable)
