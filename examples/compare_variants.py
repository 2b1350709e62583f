"""Compare two variants of the Josaphat pole side by side (table, map, reports).

Run: ``BXLPLAN_DATA=../shared/data/brussels python examples/compare_variants.py out/compare``
"""

from __future__ import annotations

import sys
from pathlib import Path

from bxlplan.scenarios import compare_scenarios, write_comparison, write_scenario
from bxlplan.scoring import prepare

ROOT = Path(__file__).resolve().parent.parent


def main(out: str = "out/compare") -> None:
    ctx = prepare()  # the baseline, computed once for both variants
    files = [
        ROOT / "scenarios/josaphat.yaml",
        ROOT / "scenarios/josaphat_more_social.yaml",
    ]
    table, results = compare_scenarios(files, ctx)
    print(table.round(2).to_string())
    for res in results:
        write_scenario(res, out, overwrite=True)
    for path in write_comparison(table, results, out, overwrite=True):
        print(f"wrote {path}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
