"""Fetch official layers (WFS GetFeature with paging, the Monitoring des Quartiers API)
into the data folder, in the catalog's folder layout.

* bounded: a deadline for the whole layer and one for each request (connect, headers
  and the whole body, not only one read), a maximum number of bytes and of WFS pages;
  the defaults are in ``layers/fetch.yaml``;
* retries with exponential backoff, within the deadline, for network errors, HTTP 5xx
  and 429 (honouring ``Retry-After``), truncated or invalid JSON; other HTTP errors,
  and answers that are HTML, XML (an OGC exception report) or undeclared gzip, fail at
  once with the first bytes of the answer;
* validated before it replaces anything: the answer is written to a temporary folder
  ``.<file>.<pid>-<random>.part`` beside the target, loaded with the layer's catalog
  entry (schema, CRS, inside the region, not empty) and only then renamed over the
  target - a failed or wrong fetch never replaces a good file. Temporary folders left
  by a killed fetch are removed (and reported) by the next run;
* a provenance record beside each file (``<file>.provenance.json``: URL, time, sha256,
  feature count); the loader puts it in ``.attrs``.

Every error is a :class:`~bxlplan.errors.FetchError` naming the layer and the URL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import hashlib
import http.client
import json
import logging
import math
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pyproj

from .._io import atomic_write
from .._version import __version__
from ..errors import BxlplanError, ConfigError, FetchError
from .catalog import LayerSpec, catalog, get_spec, read_catalog_file

__all__ = [
    "FetchLimits",
    "FetchResult",
    "atomic_write",
    "clean_stale_parts",
    "fetch",
    "fetch_layer",
    "fetch_limits",
]

USER_AGENT = f"bxlplan/{__version__} (+https://pypi.org/project/bxlplan)"
LIMITS_FILE = "fetch.yaml"
_CHUNK = 1 << 16
_SHOW = 200  # bytes of a wrong answer quoted in the error
_HEAD = 4096  # bytes kept to tell what a wrong answer is
_OGC_TEXT = re.compile(
    rb"<(?:\w+:)?(?:ExceptionText|ServiceException)\b[^>]*>([^<]+)<", re.IGNORECASE
)

_log = logging.getLogger(__name__)


@dataclass
class FetchResult:
    """What :func:`fetch_layer` did for one layer.

    Parameters
    ----------
    layer : str
        The catalog layer.
    path : Path or None
        The file in the data folder (None when the layer is not fetchable).
    status : {"fetched", "present", "not fetchable"}
        What happened.
    features : int, optional
        The number of features downloaded.
    url : str, optional
        Where it was downloaded from.
    cleaned : list of Path
        The temporary files a killed earlier fetch had left (removed now).
    report : list of str
        What the validation changed (repaired geometries, missing values).

    Examples
    --------
    >>> FetchResult("streets", None, "not fetchable").status
    'not fetchable'
    """

    layer: str
    path: Path | None
    status: str
    features: int | None = None
    url: str | None = None
    cleaned: list[Path] = field(default_factory=list)
    report: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FetchLimits:
    """Bounds of one layer's fetch (defaults in ``layers/fetch.yaml``).

    Parameters
    ----------
    deadline_s : float
        Seconds for the whole layer: every request, retry and wait.
    request_deadline_s : float
        Seconds for one request: connect, headers and the whole body.
    max_bytes : int
        Bytes downloaded for the layer, all pages together.
    max_pages : int
        WFS pages for the layer.

    Examples
    --------
    >>> FetchLimits(600.0, 120.0, 200_000_000, 200).max_pages
    200
    """

    deadline_s: float
    request_deadline_s: float
    max_bytes: int
    max_pages: int


def fetch_limits(**overrides: float | None) -> FetchLimits:
    """Return the fetch limits of ``layers/fetch.yaml``, with ``overrides`` applied.

    Parameters
    ----------
    **overrides
        ``deadline_s``, ``request_deadline_s``, ``max_bytes``, ``max_pages``; ``None``
        keeps the file's value.

    Returns
    -------
    FetchLimits
        The limits.

    Raises
    ------
    ConfigError
        When a limit is missing, not a positive number, or unknown.

    Examples
    --------
    >>> fetch_limits(max_pages=3).max_pages
    3
    """
    names = [f.name for f in fields(FetchLimits)]
    unknown = set(overrides) - set(names)
    if unknown:
        raise ConfigError(f"unknown fetch limit(s) {sorted(unknown)}; known: {names}")
    raw = read_catalog_file(LIMITS_FILE)
    values: dict[str, Any] = {}
    for name in names:
        given = overrides.get(name)
        value = raw.get(name) if given is None else given
        where = (
            f"catalog file {LIMITS_FILE}, key '{name}'"
            if given is None
            else f"fetch limit {name}"
        )
        count = name in ("max_bytes", "max_pages")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
            or (count and value != int(value))
        ):
            raise ConfigError(
                f"{where} must be a positive "
                + ("whole number" if count else "number of seconds")
                + f", not {value!r}: fix it"
            )
        values[name] = int(value) if count else float(value)
    return FetchLimits(**values)


# --- temporary folders -------------------------------------------------------------

_PART = re.compile(r"\.(?P<pid>\d+)-[^.]+\.part$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def clean_stale_parts(target: Path) -> list[Path]:
    """Remove the temporary files of ``target`` that a killed fetch left behind.

    A fetch stages its download in ``.<file>.<pid>-<random>.part`` beside the target;
    one whose process is gone is stale. Leftovers without a process id (older
    versions) are stale too.

    Parameters
    ----------
    target : Path
        The file a fetch writes.

    Returns
    -------
    list of Path
        What was removed.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "communes.geojson"
    >>> stale = target.parent / ".communes.geojson.tmp.part"  # no process id: stale
    >>> stale.mkdir()
    >>> [p.name for p in clean_stale_parts(target)], stale.exists()
    (['.communes.geojson.tmp.part'], False)
    """
    target = Path(target)
    removed: list[Path] = []
    if not target.parent.is_dir():
        return removed
    for part in sorted(target.parent.glob(f".{target.name}.*.part")):
        m = _PART.search(part.name[len(target.name) + 1 :])
        if m and _alive(int(m["pid"])):
            continue  # a fetch running now, in this process or another
        if part.is_dir() and not part.is_symlink():
            shutil.rmtree(part, ignore_errors=True)
        else:
            part.unlink(missing_ok=True)
        removed.append(part)
    return removed


# --- one request -------------------------------------------------------------------


class _Budget:
    """What a layer may still spend: time until its deadline, and bytes."""

    def __init__(self, limits: FetchLimits) -> None:
        self.limits = limits
        self.end = time.monotonic() + limits.deadline_s
        self.bytes_left = limits.max_bytes

    def left(self) -> float:
        return self.end - time.monotonic()


class _Watchdog:
    """Shut the socket of a request down when its deadline passes.

    A per-read timeout alone lets a server dripping one byte per second keep a request
    alive for ever; shutting the socket down makes the blocked read return at once.
    """

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def attach(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            if self.fired:
                self._shutdown()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):  # already closed
                self._sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _opener(watch: _Watchdog) -> urllib.request.OpenerDirector:
    """A urllib opener (proxies, redirects as usual) whose sockets ``watch`` guards."""

    class Watched:
        def do_open(self, http_class: Any, req: Any, **kw: Any) -> Any:
            class Connection(http_class):
                def connect(self) -> None:
                    super().connect()
                    watch.attach(self.sock)

            return super().do_open(Connection, req, **kw)  # type: ignore[misc]

    class HTTP(Watched, urllib.request.HTTPHandler):
        pass

    class HTTPS(Watched, urllib.request.HTTPSHandler):
        pass

    return urllib.request.build_opener(HTTP, HTTPS)


class _RetryableError(Exception):
    """A failure worth another attempt (``retry_after``: what the server asked for)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _first_bytes(head: bytes) -> str:
    text = head[:_SHOW].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return repr(text + (" ..." if len(head) > _SHOW else ""))


def _says(head: bytes) -> str | None:
    """The text of an OGC exception report in ``head``, if there is one."""
    m = _OGC_TEXT.search(head)
    return " ".join(m[1].decode("utf-8", "replace").split()) if m else None


def _refuse_non_json(head: bytes, content_type: str, where: str) -> None:
    """Fail at once on an answer that is not JSON and will not become JSON on retry."""
    if head[:2] == b"\x1f\x8b":
        raise FetchError(
            f"{where} answered gzip-compressed bytes without declaring them "
            f"(Content-Type: {content_type or 'none'}, no Content-Encoding: gzip): "
            f"first bytes {head[:16]!r}. Not retried: the server or a proxy on "
            "the way is misconfigured; try again later or put the file in the data "
            "folder by hand."
        )
    lower = head.lower()
    if head.lstrip()[:1] == b"<":
        if b"exceptionreport" in lower or b"serviceexception" in lower:
            what = "an OGC exception report"
            hint = "check the layer's typename in the catalog"
        elif b"<html" in lower or b"<!doctype html" in lower:
            what = "an HTML page"
            hint = "a portal, login or maintenance page: check the URL"
        else:
            what = "XML"
            hint = "check the URL and the layer's typename in the catalog"
    elif "html" in content_type.lower():
        what = "an HTML page"
        hint = "a portal, login or maintenance page: check the URL"
    else:
        return
    said = _says(head)
    raise FetchError(
        f"{where} answered {what} instead of JSON (Content-Type: "
        f"{content_type or 'none'})"
        + (f", saying {said!r}" if said else "")
        + f": first bytes {_first_bytes(head)}. Not retried: {hint}."
    )


def _attempt(
    url: str, dest: Path, where: str, budget: _Budget, timeout: float
) -> tuple[Any, int]:
    """One request: stream the answer into ``dest`` and parse it as JSON.

    Returns the parsed answer and its size; raises :class:`_RetryableError` for a failure worth
    another attempt and :class:`FetchError` for one that is not.
    """
    seconds = min(budget.limits.request_deadline_s, budget.left())
    req = urllib.request.Request(
        url,
        headers={
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        },
    )
    size = 0
    head = b""
    with _Watchdog(seconds) as watch:
        try:
            with (
                _opener(watch).open(req, timeout=min(timeout, seconds)) as resp,
                open(dest, "wb") as fh,
            ):
                content_type = resp.headers.get("Content-Type", "")
                encoding = resp.headers.get("Content-Encoding", "identity").lower()
                if encoding not in ("identity", ""):
                    raise FetchError(
                        f"{where} answered with Content-Encoding: {encoding} although "
                        "bxlplan asked for none (Accept-Encoding: identity). Not "
                        "retried: the server or a proxy on the way is misconfigured."
                    )
                length = resp.headers.get("Content-Length", "")
                expected = int(length) if length.isdigit() else None
                if expected is not None and expected > budget.bytes_left:
                    raise FetchError(
                        f"{where} announces {expected:,} bytes, more than the "
                        f"{budget.bytes_left:,} left of the layer's limit of "
                        f"{budget.limits.max_bytes:,} bytes. Raise --max-bytes if the "
                        "layer is really that large."
                    )
                while chunk := resp.read1(_CHUNK):
                    if watch.fired:
                        break
                    size += len(chunk)
                    if size > budget.bytes_left:
                        raise FetchError(
                            f"{where} sent more than the {budget.bytes_left:,} bytes "
                            f"left of the layer's limit of {budget.limits.max_bytes:,}"
                            " bytes (an endless answer?). Raise --max-bytes if the "
                            "layer is really that large."
                        )
                    if len(head) < _HEAD:
                        head += chunk[: _HEAD - len(head)]
                        if len(head) >= _SHOW:  # enough to tell what it is
                            _refuse_non_json(head, content_type, where)
                    fh.write(chunk)
                if watch.fired:
                    raise _RetryableError(f"no complete answer within {seconds:.3g} s")
                _refuse_non_json(head, content_type, where)
                if expected is not None and size < expected:
                    raise _RetryableError(
                        f"truncated answer ({size} of {expected} bytes)"
                    )
        except FetchError:  # an OSError too, but final: never retried
            raise
        except urllib.error.HTTPError as exc:
            with contextlib.suppress(OSError, http.client.HTTPException):
                head = exc.read(_HEAD)  # what the server says, for the message
            exc.close()  # release the connection of the error answer
            if exc.code < 500 and exc.code != 429:
                said = _says(head)
                shown = f" ({_first_bytes(head)})" if head else ""
                raise FetchError(
                    f"{where} answered HTTP {exc.code} {exc.reason}"
                    + (f", saying {said!r}" if said else shown)
                    + ". Not retried: check the URL and the layer's name in the catalog."
                ) from exc
            raise _RetryableError(
                f"HTTP {exc.code} {exc.reason}",
                _retry_after(exc.headers.get("Retry-After")),
            ) from exc
        except (
            urllib.error.URLError,
            http.client.HTTPException,  # IncompleteRead: the body was cut short
            OSError,  # timeouts, refused and reset connections
        ) as exc:
            if watch.fired:
                raise _RetryableError(
                    f"no complete answer within {seconds:.3g} s"
                ) from exc
            raise _RetryableError(str(exc) or type(exc).__name__) from exc
    try:
        with open(dest, "rb") as fh:
            content = json.load(fh)
    except ValueError as exc:  # invalid JSON, or not UTF-8
        raise _RetryableError(f"invalid JSON: {exc}") from exc
    finally:
        dest.unlink(missing_ok=True)
    return content, size


def _get_json(
    url: str,
    dest: Path,
    *,
    layer: str,
    budget: _Budget,
    timeout: float,
    retries: int,
    backoff: float,
) -> Any:
    """GET ``url`` as JSON (staged in ``dest``), retrying within the layer's budget."""
    where = f"layer '{layer}': {url}"
    last: _RetryableError | None = None
    for attempt in range(retries + 1):
        if last is not None:
            wait = backoff * 2 ** (attempt - 1)
            left = budget.left()
            if last.retry_after is not None:
                if last.retry_after > left:
                    raise FetchError(
                        f"{where} answered {last} and asked to wait "
                        f"{last.retry_after:.0f} s, more than the {max(left, 0):.0f} s "
                        f"left of the layer's deadline ({budget.limits.deadline_s:g} "
                        "s). Try again later, or raise --deadline."
                    )
                wait = max(wait, last.retry_after)
            if wait >= left:
                raise _deadline_error(where, budget, attempt, last)
            time.sleep(wait)
        if budget.left() <= 0:
            raise _deadline_error(where, budget, attempt, last)
        try:
            content, size = _attempt(url, dest, where, budget, timeout)
        except _RetryableError as exc:
            last = exc
            continue
        budget.bytes_left -= size
        return content
    raise FetchError(
        f"{where} failed after {retries + 1} attempt(s): {last}. The service may be "
        "down or unreachable from here; try again later, or put the file in the data "
        "folder by hand."
    )


def _deadline_error(
    where: str, budget: _Budget, attempts: int, last: _RetryableError | None
) -> FetchError:
    return FetchError(
        f"{where} reached the layer's deadline of {budget.limits.deadline_s:g} s "
        f"after {attempts} attempt(s)"
        + (f" (last: {last})" if last else "")
        + ". The service is too slow or down; try again later, raise --deadline, or "
        "put the file in the data folder by hand."
    )


# --- services ----------------------------------------------------------------------


def _rebase(url: str, base_url: str | None) -> str:
    """Replace scheme and host of ``url`` by those of ``base_url`` (a local stand-in)."""
    if not base_url:
        return url
    parts = urllib.parse.urlsplit(url)
    base = urllib.parse.urlsplit(base_url)
    return urllib.parse.urlunsplit(
        (base.scheme, base.netloc, parts.path, parts.query, "")
    )


def _check_crs(page: dict[str, Any], where: str) -> None:
    """GDAL silently reads an unknown GeoJSON ``crs`` as EPSG:4326: refuse it here."""
    crs = page.get("crs")
    if crs is None:
        return
    name = crs.get("properties", {}).get("name") if isinstance(crs, dict) else None
    try:
        pyproj.CRS.from_user_input(name)
    except pyproj.exceptions.CRSError as exc:
        raise FetchError(
            f"{where}: the answer declares the coordinate reference system {crs!r}, "
            "which is not a known CRS. Not retried: report it to the service, or put "
            "the file in the data folder by hand with a valid CRS."
        ) from exc


def _fetch_wfs(
    spec: LayerSpec,
    url: str,
    get: Callable[[str, str], Any],
    *,
    page_size: int,
    max_pages: int,
) -> dict[str, Any]:
    typename = (spec.fetch or {})["typename"]
    where = f"layer '{spec.name}': {url} ({typename})"
    features: list[dict[str, Any]] = []
    first: dict[str, Any] | None = None
    seen: set[str] = set()
    total: Any = None
    start = 0
    for page_no in range(max_pages + 1):
        if page_no == max_pages:
            raise FetchError(
                f"{where} still had features to send after {max_pages} pages of "
                f"{page_size} ({len(features)} features so far"
                + (f" of {total}" if isinstance(total, int) else "")
                + "). Raise --max-pages if the layer is really that large; otherwise "
                "the server ignores paging (startIndex)."
            )
        params = {
            "service": "WFS",
            "version": "2.0.0",
            "request": "GetFeature",
            "typeNames": typename,
            "outputFormat": "application/json",
            "count": str(page_size),
            "startIndex": str(start),
        }
        page_url = f"{url}?{urllib.parse.urlencode(params)}"
        page = get(page_url, f"page-{page_no:04d}.json")
        if not isinstance(page, dict) or not isinstance(page.get("features"), list):
            raise FetchError(
                f"{where}: the answer is not a GeoJSON FeatureCollection (is the "
                "layer name right?)"
            )
        if first is None:
            first = page
            _check_crs(page, where)
        got = page["features"]
        if got:
            key = hashlib.sha256(
                json.dumps(got[0], sort_keys=True, default=str).encode()
            ).hexdigest()
            if key in seen:
                raise FetchError(
                    f"{where}: the page at startIndex={start} repeats an earlier page: "
                    "the server ignores paging (startIndex). Not retried: try a "
                    "larger --page-size, or put the file in the data folder by hand."
                )
            seen.add(key)
        features.extend(got)
        total = page.get("numberMatched", page.get("totalFeatures"))
        start += len(got)
        if (
            not got
            or len(got) < page_size
            or (isinstance(total, int) and start >= total)
        ):
            break
    if not features:
        raise FetchError(
            f"{where} returned no feature: check the layer name (typename) in the "
            "catalog; nothing was replaced."
        )
    out: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if first and "crs" in first:
        out["crs"] = first["crs"]
    return out


def _fetch_mdq(spec: LayerSpec, url: str, get: Callable[[str, str], Any]) -> Any:
    dataset = (spec.fetch or {})["dataset"]
    content = get(f"{url.rstrip('/')}/dataset/{dataset}", "dataset.json")
    rows = content.get("data", content) if isinstance(content, dict) else content
    if not isinstance(rows, list) or not all(
        isinstance(r, dict) and "id" in r for r in rows
    ):
        raise FetchError(
            f"layer '{spec.name}': {url} dataset {dataset} is not a list of "
            "{id, value, flag}"
        )
    return rows


def _validate(spec: LayerSpec, staged: Path, url: str) -> list[str]:
    """Load the staged file with the layer's catalog entry; return the load report."""
    from .expect import require_plausible
    from .load import load

    try:
        obj = load(spec.name, path=staged)
        # the same plausibility ranges as `bxlplan check` (e.g. 19 communes)
        require_plausible(spec, obj, what=" fetched")
    except BxlplanError as exc:
        raise FetchError(
            f"layer '{spec.name}': the answer of {url} is not a usable "
            f"'{spec.name}' layer, nothing was replaced: "
            + str(exc).replace(str(staged), "the answer")
        ) from exc
    return list(obj.attrs.get("bxlplan", {}).get("report", []))


def _write(path: Path, body: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())


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
    deadline: float | None = None,
    request_deadline: float | None = None,
    max_bytes: int | None = None,
    max_pages: int | None = None,
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
    timeout
        Seconds one network read may wait.
    retries
        Further attempts of a request after a failure worth retrying.
    backoff
        Seconds before the first retry, doubled at each further one.
    page_size
        Features asked per WFS page.
    deadline, request_deadline, max_bytes, max_pages
        Override the limits of ``layers/fetch.yaml`` (see :class:`FetchLimits`).

    Returns
    -------
    FetchResult
        With the temporary files of a killed earlier fetch that were cleaned.

    Raises
    ------
    FetchError
        Naming the layer and the URL: the service failed, misbehaved (too slow, too
        large, endless paging) or answered something that is not a valid layer. The
        file already in the data folder, if any, is left as it was.

    Examples
    --------
    A file already there is kept (``force=True`` downloads it again); a layer without
    an official source is not fetchable:

    >>> import tempfile
    >>> data = Path(tempfile.mkdtemp())
    >>> (data / "official").mkdir()
    >>> _ = (data / "official" / "communes.geojson").write_text("{}")
    >>> fetch_layer("communes", data).status, fetch_layer("streets", data).status
    ('present', 'not fetchable')
    """
    spec = get_spec(name)
    if not spec.fetch:
        return FetchResult(name, None, "not fetchable")
    if timeout <= 0 or retries < 0 or backoff < 0 or page_size < 1:
        raise ConfigError(
            f"layer '{name}': fetch needs timeout > 0, retries >= 0, backoff >= 0 and "
            f"page_size >= 1 (got {timeout}, {retries}, {backoff}, {page_size})"
        )
    limits = fetch_limits(
        deadline_s=deadline,
        request_deadline_s=request_deadline,
        max_bytes=max_bytes,
        max_pages=max_pages,
    )
    target = Path(data) / spec.fetch["path"]
    url = _rebase(spec.fetch["url"], base_url)
    cleaned = clean_stale_parts(target)
    for part in cleaned:
        _log.warning("layer '%s': removed %s, left by a killed fetch", name, part)
    if target.exists() and not force:
        return FetchResult(name, target, "present", url=url, cleaned=cleaned)
    budget = _Budget(limits)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(
            tempfile.mkdtemp(
                prefix=f".{target.name}.{os.getpid()}-",
                suffix=".part",
                dir=target.parent,
            )
        )
    except OSError as exc:
        raise FetchError(
            f"layer '{name}': cannot write into {target.parent} ({exc}): check the "
            "data folder's permissions and free space"
        ) from exc
    try:

        def get(page_url: str, file_name: str) -> Any:
            return _get_json(
                page_url,
                stage / file_name,
                layer=name,
                budget=budget,
                timeout=timeout,
                retries=retries,
                backoff=backoff,
            )

        service = spec.fetch["service"]
        if service == "wfs":
            content = _fetch_wfs(
                spec, url, get, page_size=page_size, max_pages=limits.max_pages
            )
            n = len(content["features"])
        elif service == "mdq":
            content = _fetch_mdq(spec, url, get)
            n = len(content)
        else:
            raise FetchError(
                f"layer '{name}': {spec.path}: unknown service '{service}' (wfs or mdq)"
            )
        body = json.dumps(content, ensure_ascii=False).encode("utf-8")
        staged = stage / target.name
        _write(staged, body)
        report = _validate(spec, staged, url)
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
        sidecar = stage / (target.name + ".provenance.json")
        _write(sidecar, json.dumps(record, indent=2, ensure_ascii=False).encode())
        os.replace(staged, target)
        os.replace(sidecar, target.with_name(sidecar.name))
    except FetchError:  # an OSError too: it already says what went wrong
        raise
    except OSError as exc:  # disk full, permissions, staging folder removed
        raise FetchError(
            f"layer '{name}': cannot write {target} ({exc}); the file there, if any, "
            "was not replaced. Check the data folder's permissions and free space."
        ) from exc
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return FetchResult(name, target, "fetched", n, url, cleaned, report)


def fetch(
    data: Path, layers: list[str] | None = None, **kwargs: Any
) -> list[FetchResult]:
    """Fetch several layers (default: every fetchable layer of the catalog).

    Parameters
    ----------
    data : Path
        The data folder.
    layers : list of str, optional
        The layers to fetch (default: every layer with a ``fetch`` entry).
    **kwargs
        Passed to :func:`fetch_layer` (``force``, ``base_url``, ``timeout``, ...).

    Returns
    -------
    list of FetchResult
        One per layer, in order.

    Raises
    ------
    FetchError
        As :func:`fetch_layer`, at the first layer that fails.

    Examples
    --------
    >>> import tempfile
    >>> [r.status for r in fetch(Path(tempfile.mkdtemp()), ["streets"])]
    ['not fetchable']
    """
    names = layers or [n for n, s in catalog().items() if s.fetch]
    return [fetch_layer(n, data, **kwargs) for n in names]
