"""Make a folium page self-contained: inline Leaflet and its plugins, drop the assets our
maps do not use, and refuse to write a page that would still need the network.

The assets come from the npm packages pinned by ``package-lock.json``: in a wheel they
are packaged under ``bxlplan/_assets/`` (copied from ``node_modules/`` at build time by
``hatch_build.py``, which reads ``ASSETS`` and ``CSS_URL`` below: they are the one list
of what a map needs); in a checkout they are read from ``node_modules/`` (``npm ci``)."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

from ..errors import BxlplanError

__all__ = ["asset_dir", "inline_assets"]

# CDN file name -> file inside node_modules (the same path under bxlplan/_assets in a
# wheel). A literal: hatch_build.py reads it without importing bxlplan.
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

# a url(...) in an inlined stylesheet: images next to it become data: URIs (a literal,
# read by hatch_build.py to package those images too)
CSS_URL = r"url\(((?!data:)[^)]*)\)"

_TAG = re.compile(
    r'<script src="(?P<js>https?://[^"]+)"></script>|<link rel="stylesheet" href="(?P<css>https?://[^"]+)"/>'
)


def _complete(folder: Path) -> bool:
    return all((folder / rel).is_file() for rel in ASSETS.values())


def asset_dir() -> Path:
    """The folder holding Leaflet and its plugins, laid out as ``node_modules``.

    In order: ``$BXLPLAN_ASSETS`` (an explicit choice, so it must hold them), the
    copies packaged in the installed wheel (``bxlplan/_assets``), the checkout's
    ``node_modules`` and the current folder's.

    Returns
    -------
    Path
        The first folder that holds every file of ``ASSETS``.

    Raises
    ------
    BxlplanError
        When ``$BXLPLAN_ASSETS`` lacks a file, or no folder holds them all (the
        message says how to install them).

    Examples
    --------
    >>> (asset_dir() / ASSETS["leaflet.js"]).is_file()
    True
    """
    env = os.environ.get("BXLPLAN_ASSETS")
    if env:
        if _complete(Path(env)):
            return Path(env)
        missing = [rel for rel in ASSETS.values() if not (Path(env) / rel).is_file()]
        raise BxlplanError(
            f"BXLPLAN_ASSETS={env} lacks {', '.join(missing)}: point it to a "
            "node_modules folder made by `npm ci` in a bxlplan checkout, or unset it"
        )
    here = Path(__file__).resolve()
    places = [
        here.parents[1] / "_assets",  # bxlplan/_assets in an installed wheel
        here.parents[3] / "node_modules",  # a checkout (editable install)
        Path.cwd() / "node_modules",
    ]
    for cand in places:
        if _complete(cand):
            return cand
    raise BxlplanError(
        "offline maps need Leaflet and leaflet.markercluster (npm), found in none of "
        f"{', '.join(str(p) for p in places)}. "
        "From a checkout: run `make setup` or `npm ci` in it. "
        "Installed with pip: the wheel carries them in bxlplan/_assets; this one does "
        "not, so reinstall from a wheel built by bxlplan's build (`python -m build` in a "
        "checkout with npm, or from its sdist). "
        "Elsewhere: set BXLPLAN_ASSETS to a node_modules folder holding the versions "
        "pinned by bxlplan's package-lock.json"
    )


def inline_assets(html: str) -> str:
    """Inline known assets, drop unused ones; raise if any external URL remains.

    Parameters
    ----------
    html : str
        A folium map's HTML, with ``<script src>`` and ``<link href>`` to CDNs.

    Returns
    -------
    str
        The same page with Leaflet and its plugins inlined (images of their CSS as
        ``data:`` URIs) and folium's unused widgets dropped: it opens offline.

    Raises
    ------
    BxlplanError
        When the page refers to a file with no local copy, or would still load
        something from the network.

    Examples
    --------
    >>> page = ('<script src="https://cdn.example/leaflet.js"></script>'
    ...         '<script src="https://cdn.example/jquery.min.js"></script>')
    >>> out = inline_assets(page)
    >>> out.startswith("<script>"), "jquery" in out, "cdn.example" in out
    (True, False, False)
    """
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

        text = re.sub(CSS_URL, data_uri, text)
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
