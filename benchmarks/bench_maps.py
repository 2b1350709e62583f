"""Benchmark: map file sizes and drawing time in headless Chromium, with the base map.

Budgets (issue 11): neighbourhood map with its base map (communes and names, main
streets, rail, green, water, neighbourhood names), facilities and shortage zones under
3 MB; 100 m grid map of the region under 12 MB and drawn in under 5 s. Also printed:
how long the indicator switch takes to redraw the grid. Run (with ``BXLPLAN_DATA``
set): ``python benchmarks/bench_maps.py``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bxlplan.exports import make_map, save_map
from bxlplan.exports.basemap import context_layers
from bxlplan.loading.areas import load_areas, make_grid
from bxlplan.scoring import assess, prepare


def draw_seconds(path: Path, switch: bool = False) -> tuple[float, float | None]:
    """Seconds from opening the file to the first frame drawn, and (``switch``) to
    redraw after choosing the second indicator."""
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
        frame = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
        page.evaluate(frame)
        seconds = time.perf_counter() - t0
        redraw = None
        if switch:
            t1 = time.perf_counter()
            page.select_option(".bxlplan-switch", index=1)
            page.evaluate(frame)
            redraw = time.perf_counter() - t1
        browser.close()
    return seconds, redraw


def main() -> None:
    ctx = prepare()
    out = Path(tempfile.mkdtemp())
    t0 = time.perf_counter()
    context_layers(ctx.data)
    print(f"base map read and simplified in {time.perf_counter() - t0:.1f} s (once)")
    hoods = assess(load_areas("neighbourhoods", ctx.data), ctx)
    t0 = time.perf_counter()
    m = make_map(
        hoods.areas, "score_overall", shortage=hoods.shortage_zones,
        facilities=ctx.facilities, offline=True, data=ctx.data,
    )  # fmt: skip
    p = save_map(m, out / "hoods.html", offline=True)
    built = time.perf_counter() - t0
    drawn, _ = draw_seconds(p)
    print(
        f"neighbourhood map with base map: {p.stat().st_size / 1e6:.2f} MB "
        f"(budget 3 MB), built in {built:.1f} s, drawn in {drawn:.1f} s"
    )
    grid = assess(make_grid(ctx.communes, 100), ctx)
    t0 = time.perf_counter()
    g = save_map(
        make_map(grid.areas, "score_services", offline=True, data=ctx.data),
        out / "grid.html",
        offline=True,
    )
    built = time.perf_counter() - t0
    drawn, redraw = draw_seconds(g, switch=True)
    print(
        f"100 m grid map with base map ({len(grid.areas):,} cells): "
        f"{g.stat().st_size / 1e6:.2f} MB (budget 12 MB), built in {built:.1f} s, "
        f"drawn in {drawn:.1f} s (budget 5 s), indicator switch redrawn in "
        f"{redraw:.1f} s"
    )


if __name__ == "__main__":
    main()
