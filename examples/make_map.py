"""Assess the 145 neighbourhoods and make an offline, bilingual map of the scores.

Run: ``BXLPLAN_DATA=../shared/data/brussels python examples/make_map.py out/example_map.html``
"""

from __future__ import annotations

import sys
from pathlib import Path

from bxlplan.exports import make_map, save_map
from bxlplan.loading.areas import load_areas
from bxlplan.scoring import assess, prepare


def main(out: str = "out/example_map.html") -> None:
    ctx = prepare()
    result = assess(load_areas("neighbourhoods", ctx.data), ctx)
    m = make_map(
        result.areas,
        "score_overall",
        shortage=result.shortage_zones,
        facilities=ctx.facilities,
        lang="fr",
        offline=True,  # one self-contained file: opens with no network at all
    )
    path = save_map(m, Path(out), offline=True, overwrite=True)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main(*sys.argv[1:2])
