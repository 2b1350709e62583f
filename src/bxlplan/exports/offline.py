"""Make a folium page self-contained: inline Leaflet and its plugins from the npm
packages installed by the set-up step (``node_modules/``), drop the assets our maps do
not use, and refuse to write a page that would still need the network."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

from ..errors import BxlplanError

__all__ = ["asset_dir", "inline_assets"]

# CDN file name -> file inside node_modules
ASSETS = {
    "leaflet.js": "leaflet/dist/leaflet.js",
    "leaflet.css": "leaflet/dist/leaflet.css",
    "leaflet.markercluster.js": "leaflet.markercluster/dist/leaflet.markercluster.js",
    "MarkerCluster.css": "leaflet.markercluster/dist/MarkerCluster.css",
    "MarkerCluster.Default.css": "leaflet.markercluster/dist/MarkerCluster.Default.css",
}
# folium defaults that bxlplan's maps never use (no jQuery/Bootstrap widgets, no icon fonts)
UNUSED = (
    "jquery",
    "bootstrap",
    "awesome-markers",
    "fontawesome",
    "glyphicons",
    "awesome.rotate",
)

_TAG = re.compile(
    r'<script src="(?P<js>https?://[^"]+)"></script>|<link rel="stylesheet" href="(?P<css>https?://[^"]+)"/>'
)


def asset_dir() -> Path:
    """The ``node_modules`` folder with Leaflet: ``$BXLPLAN_ASSETS`` or the repository's."""
    env = os.environ.get("BXLPLAN_ASSETS")
    here = Path(__file__).resolve()
    for cand in ([Path(env)] if env else []) + [
        here.parents[3] / "node_modules",
        Path.cwd() / "node_modules",
    ]:
        if (cand / ASSETS["leaflet.js"]).is_file():
            return cand
    raise BxlplanError(
        "offline maps need Leaflet from npm: run `make setup` (or `npm ci` in the bxlplan "
        "folder), or point BXLPLAN_ASSETS to a node_modules folder that holds leaflet"
    )


def inline_assets(html: str) -> str:
    """Inline known assets, drop unused ones; raise if any external URL remains."""
    root = asset_dir()

    def repl(match: re.Match[str]) -> str:
        url = match.group("js") or match.group("css")
        name = url.rsplit("/", 1)[-1]
        if any(u in url.lower() for u in UNUSED):
            return ""
        if name not in ASSETS:
            raise BxlplanError(
                f"offline map: no local copy of {url}; add it to exports/offline.py ASSETS"
            )
        text = (root / ASSETS[name]).read_text(encoding="utf-8")
        if match.group("js"):
            return "<script>" + text.replace("</script", "<\\/script") + "</script>"
        # images the CSS refers to (the layer-control icon...) become data: URIs
        folder = (root / ASSETS[name]).parent

        def data_uri(m: re.Match[str]) -> str:
            ref = m.group(1).strip("'\"")
            img = folder / ref
            if not img.is_file():
                return "none"
            kind = "svg+xml" if img.suffix == ".svg" else img.suffix.lstrip(".")
            return f"url(data:image/{kind};base64,{base64.b64encode(img.read_bytes()).decode()})"

        text = re.sub(r"url\(((?!data:)[^)]*)\)", data_uri, text)
        return "<style>" + text + "</style>"

    out = _TAG.sub(repl, html)
    # what a browser would fetch: scripts, stylesheets, images (links are fine), and
    # url(...) in CSS only: text from data (a place named "url(https://...)") is not
    # CSS and must not stop the map from being written
    left = re.findall(
        r'<(?:script|img|iframe)[^>]+src="(https?://[^"]+)"|<link[^>]+href="(https?://[^"]+)"',
        out,
    )
    left = [next(u for u in m if u) for m in left]
    css = re.findall(r"<style[^>]*>(.*?)</style>", out, flags=re.S)
    css += re.findall(r'\sstyle="([^"]*)"', out)
    left += [
        u for c in css for u in re.findall(r"url\((?:[\"\'])?(https?://[^)\"\']+)", c)
    ]
    if left:
        raise BxlplanError(f"offline map would still load {left[:3]} from the network")
    return out
