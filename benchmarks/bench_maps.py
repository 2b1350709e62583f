"""Benchmark: map file sizes and drawing time in headless Chromium.

Budgets (issue 4): neighbourhood map under 3 MB; 100 m grid map of the region under
15 MB and drawn in under 5 s. Run: ``python benchmarks/bench_maps.py``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bxlplan.exports import make_map, save_map
from bxlplan.loading.areas import load_areas, make_grid
from bxlplan.scoring import assess, prepare


def draw_seconds(path: Path) -> float:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        t0 = time.perf_counter()
        page.goto(path.resolve().as_uri(), wait_until="load", timeout=120_000)
        page.wait_for_selector(
            ".leaflet-interactive, .leaflet-overlay-pane canvas", state="attached"
        )
        page.evaluate(
            "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
        )
        seconds = time.perf_counter() - t0
        browser.close()
    return seconds


def main() -> None:
    ctx = prepare()
    out = Path(tempfile.mkdtemp())
    hoods = assess(load_areas("neighbourhoods", ctx.data), ctx)
    m = make_map(
        hoods.areas,
        "score_overall",
        shortage=hoods.shortage_zones,
        facilities=ctx.facilities,
        offline=True,
    )
    p = save_map(m, out / "hoods.html", offline=True)
    print(
        f"neighbourhood map: {p.stat().st_size / 1e6:.2f} MB (budget 3 MB), drawn in {draw_seconds(p):.1f} s"
    )
    grid = assess(make_grid(ctx.communes, 100), ctx)
    t0 = time.perf_counter()
    g = save_map(
        make_map(grid.areas, "score_services", offline=True),
        out / "grid.html",
        offline=True,
    )
    built = time.perf_counter() - t0
    print(
        f"100 m grid map ({len(grid.areas):,} cells): {g.stat().st_size / 1e6:.2f} MB (budget 15 MB), "
        f"built in {built:.1f} s, drawn in {draw_seconds(g):.1f} s (budget 5 s)"
    )


if __name__ == "__main__":
    main()
