"""Fetch official layers (WFS GetFeature with paging, the Monitoring des Quartiers API)
into the data folder, in the catalog's folder layout.

* timeouts, retries with exponential backoff (network errors, HTTP 5xx and 429,
  truncated or invalid JSON); other HTTP errors fail at once;
* atomic writes: the answer is written to a temporary file in the target folder and
  renamed over the target only when complete - a failed fetch never replaces a good file;
* a provenance record beside each file (``<file>.provenance.json``: URL, time, sha256,
  feature count); the loader puts it in ``.attrs``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from .._io import atomic_write
from ..errors import FetchError
from .catalog import LayerSpec, catalog, get_spec

__all__ = ["FetchResult", "atomic_write", "fetch", "fetch_layer"]

USER_AGENT = f"bxlplan/{__version__} (+https://pypi.org/project/bxlplan)"


@dataclass
class FetchResult:
    layer: str
    path: Path | None
    status: str  # "fetched", "present", "not fetchable"
    features: int | None = None
    url: str | None = None


def _rebase(url: str, base_url: str | None) -> str:
    """Replace scheme and host of ``url`` by those of ``base_url`` (a local stand-in)."""
    if not base_url:
        return url
    parts = urllib.parse.urlsplit(url)
    base = urllib.parse.urlsplit(base_url)
    return urllib.parse.urlunsplit(
        (base.scheme, base.netloc, parts.path, parts.query, "")
    )


def _get_json(url: str, *, timeout: float, retries: int, backoff: float) -> Any:
    last: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                body = resp.read()
                expected = resp.headers.get("Content-Length")
            if expected is not None and len(body) < int(expected):
                raise ValueError(f"truncated answer ({len(body)} of {expected} bytes)")
            return json.loads(body)
        except urllib.error.HTTPError as exc:
            exc.close()  # release the connection of the error answer
            last = exc
            if exc.code < 500 and exc.code != 429:
                raise FetchError(
                    f"{url} answered HTTP {exc.code} {exc.reason}"
                ) from exc
        except (
            urllib.error.URLError,
            http.client.HTTPException,  # IncompleteRead: the body was cut short
            TimeoutError,
            ConnectionError,
            ValueError,  # invalid or truncated JSON (json.JSONDecodeError)
        ) as exc:
            last = exc
    raise FetchError(
        f"{url} failed after {retries + 1} attempt(s): {last}. The service may be down "
        "or unreachable from here; try again later, or put the file in the data folder "
        "by hand."
    )


def _fetch_wfs(
    spec: LayerSpec, url: str, *, page_size: int, **kw: Any
) -> dict[str, Any]:
    fetch_def = spec.fetch or {}
    features: list[dict[str, Any]] = []
    first: dict[str, Any] | None = None
    start = 0
    while True:
        params = {
            "service": "WFS",
            "version": "2.0.0",
            "request": "GetFeature",
            "typeNames": fetch_def["typename"],
            "outputFormat": "application/json",
            "count": str(page_size),
            "startIndex": str(start),
        }
        page = _get_json(f"{url}?{urllib.parse.urlencode(params)}", **kw)
        if not isinstance(page, dict) or not isinstance(page.get("features"), list):
            raise FetchError(
                f"{url}: the answer for {fetch_def['typename']} is not a GeoJSON "
                "FeatureCollection (is the layer name right?)"
            )
        first = first or page
        features.extend(page["features"])
        total = page.get("numberMatched", page.get("totalFeatures"))
        got = len(page["features"])
        start += got
        if got < page_size or (isinstance(total, int) and start >= total) or got == 0:
            break
    if not features:
        raise FetchError(f"{url}: {fetch_def['typename']} returned no feature")
    out = {"type": "FeatureCollection", "features": features}
    if first and "crs" in first:
        out["crs"] = first["crs"]
    return out


def _fetch_mdq(spec: LayerSpec, url: str, **kw: Any) -> Any:
    dataset = (spec.fetch or {})["dataset"]
    content = _get_json(f"{url.rstrip('/')}/dataset/{dataset}", **kw)
    rows = content.get("data", content) if isinstance(content, dict) else content
    if not isinstance(rows, list) or not all(
        isinstance(r, dict) and "id" in r for r in rows
    ):
        raise FetchError(
            f"{url}: dataset {dataset} is not a list of {{id, value, flag}}"
        )
    return rows


def fetch_layer(
    name: str,
    data: Path,
    *,
    force: bool = False,
    base_url: str | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 1.0,
    page_size: int = 1000,
) -> FetchResult:
    """Download one official layer into ``data`` (see the module docstring).

    Parameters
    ----------
    name
        A catalog layer with a ``fetch`` entry.
    data
        The data folder; the file goes to the catalog's ``fetch.path`` in it.
    force
        Download even when the file is already there.
    base_url
        Send requests to this scheme and host instead of the official one (a mirror or
        a local stand-in), keeping the path.
    """
    spec = get_spec(name)
    if not spec.fetch:
        return FetchResult(name, None, "not fetchable")
    target = Path(data) / spec.fetch["path"]
    url = _rebase(spec.fetch["url"], base_url)
    if target.exists() and not force:
        return FetchResult(name, target, "present", url=url)
    kw = {"timeout": timeout, "retries": retries, "backoff": backoff}
    service = spec.fetch["service"]
    if service == "wfs":
        content = _fetch_wfs(spec, url, page_size=page_size, **kw)
        n = len(content["features"])
    elif service == "mdq":
        content = _fetch_mdq(spec, url, **kw)
        n = len(content)
    else:
        raise FetchError(f"{spec.path}: unknown service '{service}'")
    body = json.dumps(content, ensure_ascii=False).encode("utf-8")

    record = {
        "layer": name,
        "url": url,
        "service": service,
        "typename": spec.fetch.get("typename"),
        "dataset": spec.fetch.get("dataset"),
        "fetched_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sha256": hashlib.sha256(body).hexdigest(),
        "features": n,
        "licence": spec.licence,
        "attribution": spec.attribution,
        "bxlplan_version": __version__,
    }
    atomic_write(target, body)
    atomic_write(
        target.with_name(target.name + ".provenance.json"),
        json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8"),
    )
    return FetchResult(name, target, "fetched", n, url)


def fetch(
    data: Path, layers: list[str] | None = None, **kwargs: Any
) -> list[FetchResult]:
    """Fetch several layers (default: every fetchable layer of the catalog)."""
    names = layers or [n for n, s in catalog().items() if s.fetch]
    return [fetch_layer(n, data, **kwargs) for n in names]
