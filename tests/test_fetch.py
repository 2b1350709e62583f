"""The fetcher against a local stand-in of the official services (no network needed).

The stand-in answers like GeoServer (WFS 2.0 GetFeature, GeoJSON, paging with
count/startIndex, numberMatched) and like the Monitoring API; it can fail on purpose:
a 500 (or a 429 with Retry-After) before succeeding, a truncated body, a 404, and the
faults of a misbehaving server (``fault``): a body dripping a few bytes at a time, an
endless body, paging ignored or endless, HTML / OGC exception / undeclared gzip answers.
It binds 127.0.0.1 only, and every slow or endless answer stops by itself (after a few
seconds, or when the test ends).
"""

from __future__ import annotations

import email.utils
import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import bxlplan
from bxlplan.errors import ConfigError, FetchError
from bxlplan.loading.fetch import fetch_layer


def _features(n):
    feats = []
    for i in range(n):
        x, y = 4.30 + 0.01 * (i % 10), 50.80 + 0.01 * (i // 10)
        ring = [[x, y], [x + 0.005, y], [x + 0.005, y + 0.005], [x, y + 0.005], [x, y]]
        feats.append({
            "type": "Feature", "id": f"Mu.{i}",
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"MU_NATIONAL_CODE": str(21001 + i), "NAME_FRE": f"C{i}", "NAME_DUT": f"G{i}"},
        })  # fmt: skip
    return feats


WGS84 = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4326"}}
GOOD_FEATURES = _features(19)  # the 19 communes (checked like `bxlplan check`)
STREAM_LIMIT_S = 8.0  # a slow or endless answer stops by itself after this
MAX_REQUESTS = 100  # then the stand-in answers 410 Gone: no endless request loop


class StandIn(BaseHTTPRequestHandler):
    features = GOOD_FEATURES
    crs: dict | None = WGS84
    mdq_rows: list | None = None
    fail_first: dict[str, int] = {}
    fail_code = 500
    fail_headers: dict[str, str] = {}
    truncate = False
    fault: str | None = None
    requests: list[str] = []
    stop = threading.Event()

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(
        self, code, body: bytes, length=None, ctype="application/json", headers=None
    ):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header(
            "Content-Length", str(length if length is not None else len(body))
        )
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, first: bytes, more: bytes, pause: float, length=None):
        """Send ``first`` then ``more`` again and again (every ``pause`` s) until the
        client goes away, the test ends or STREAM_LIMIT_S passes."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        end = time.monotonic() + STREAM_LIMIT_S
        try:
            self.wfile.write(first)
            while time.monotonic() < end and not self.stop.is_set():
                self.wfile.write(more)
                self.wfile.flush()
                if pause:
                    time.sleep(pause)
        except OSError:  # the client gave up: what the fetcher must do
            pass

    def _fault(self, start: int, count: int) -> bool:
        fault = type(self).fault
        if fault == "drip":
            self._stream(b'{"type": "Feat', b" ", 0.05, length=10**6)
        elif fault == "endless":
            feature = json.dumps(GOOD_FEATURES[0]).encode() + b","
            self._stream(
                b'{"type": "FeatureCollection", "features": [', feature * 50, 0
            )
        elif fault == "huge":
            self._stream(b"{", b" " * 1024, 0.05, length=10**10)
        elif fault == "html":
            page = b"<!DOCTYPE html><html><head><title>Maintenance</title></head>"
            self._send(200, page + b"<body>Back soon</body></html>", ctype="text/html")
        elif fault == "ogc":
            self._send(200, (
                b'<?xml version="1.0" encoding="UTF-8"?><ows:ExceptionReport version="2.0.0" '
                b'xmlns:ows="http://www.opengis.net/ows/1.1"><ows:Exception exceptionCode='
                b'"InvalidParameterValue" locator="typeName"><ows:ExceptionText>Feature type '
                b"UrbisAdm:Mu unknown</ows:ExceptionText></ows:Exception></ows:ExceptionReport>"
            ), ctype="application/xml")  # fmt: skip
        elif fault == "gzip":
            body = {"type": "FeatureCollection", "features": GOOD_FEATURES}
            self._send(200, gzip.compress(json.dumps(body).encode()))
        elif fault == "ignore_paging":  # startIndex ignored, a huge layer announced
            self._send(200, json.dumps({
                "type": "FeatureCollection", "features": GOOD_FEATURES[:count],
                "numberMatched": 10**6, "crs": WGS84,
            }).encode())  # fmt: skip
        elif fault == "endless_paging":  # new features on every page, no count given
            feats = _features(start + count)[start:]
            for i, f in enumerate(feats):
                f["id"] = f"Mu.{start + i}"
            body = {"type": "FeatureCollection", "features": feats, "crs": WGS84}
            self._send(200, json.dumps(body).encode())
        else:
            return False
        return True

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        type(self).requests.append(self.path)
        if len(type(self).requests) > MAX_REQUESTS:  # a fetcher that never stops
            return self._send(410, b"stand-in: too many requests")
        key = url.path
        if type(self).fail_first.get(key, 0) > 0:
            type(self).fail_first[key] -= 1
            return self._send(
                self.fail_code, b"Try later", headers=type(self).fail_headers
            )
        start, count = int(q.get("startIndex", 0)), int(q.get("count", 1000))
        if self._fault(start, count):
            return None
        if url.path.endswith("/geoserver/wfs") or url.path.endswith("/geoserver/ows"):
            if q.get("typeNames") not in ("UrbisAdm:Mu",):
                return self._send(400, b'{"error": "unknown layer"}')
            page = self.features[start : start + count]
            content = {
                "type": "FeatureCollection", "features": page, "numberMatched": len(self.features),
                "numberReturned": len(page), "totalFeatures": len(self.features),
            }  # fmt: skip
            if self.crs is not None:
                content["crs"] = self.crs
            body = json.dumps(content).encode()
            if type(self).truncate:
                return self._send(200, body[: len(body) // 2], length=len(body))
            return self._send(200, body)
        if url.path.endswith("/mdq/dataset/2498"):
            rows = self.mdq_rows
            if rows is None:
                rows = [
                    {"id": i, "value": 20000 + i, "flag": None} for i in range(1, 119)
                ]
                rows += [{"id": 900, "value": None, "flag": "ND"}]
            return self._send(200, json.dumps(rows).encode())
        return self._send(404, b"not found")


@pytest.fixture
def server():
    StandIn.features = GOOD_FEATURES
    StandIn.crs = WGS84
    StandIn.mdq_rows = None
    StandIn.fail_first = {}
    StandIn.fail_code = 500
    StandIn.fail_headers = {}
    StandIn.truncate = False
    StandIn.fault = None
    StandIn.requests = []
    StandIn.stop = threading.Event()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    StandIn.stop.set()  # ends the slow and endless answers
    httpd.shutdown()
    httpd.server_close()


FAST = {"timeout": 5.0, "retries": 2, "backoff": 0.01}


def test_wfs_paging_and_provenance(server, tmp_path):
    res = fetch_layer("communes", tmp_path, base_url=server, page_size=8, **FAST)
    assert res.status == "fetched" and res.features == 19
    assert sum("GetFeature" in r for r in StandIn.requests) == 3  # 8 + 8 + 3
    assert "outputFormat=application%2Fjson" in StandIn.requests[0]
    prov = json.loads(
        (tmp_path / "official/communes.geojson.provenance.json").read_text()
    )
    assert prov["features"] == 19 and prov["url"].startswith(server)
    # the fetched file is what load() now reads, with the URL in its provenance
    communes = bxlplan.load("communes", tmp_path)
    assert len(communes) == 19 and communes.crs.to_epsg() == 31370
    assert communes.attrs["bxlplan"]["source_url"] == prov["url"]


def test_present_file_is_kept_unless_forced(server, tmp_path):
    fetch_layer("communes", tmp_path, base_url=server, **FAST)
    n = len(StandIn.requests)
    assert (
        fetch_layer("communes", tmp_path, base_url=server, **FAST).status == "present"
    )
    assert len(StandIn.requests) == n
    assert (
        fetch_layer("communes", tmp_path, base_url=server, force=True, **FAST).status
        == "fetched"
    )


def test_retries_after_500(server, tmp_path):
    StandIn.fail_first = {"/geoserver/wfs": 2}
    res = fetch_layer("communes", tmp_path, base_url=server, **FAST)
    assert res.features == 19
    assert len(StandIn.requests) == 3


def test_gives_up_and_keeps_the_good_file(server, tmp_path):
    fetch_layer("communes", tmp_path, base_url=server, **FAST)
    target = tmp_path / "official/communes.geojson"
    good = target.read_bytes()
    StandIn.fail_first = {"/geoserver/wfs": 10}
    with pytest.raises(FetchError, match="failed after 3 attempt"):
        fetch_layer("communes", tmp_path, base_url=server, force=True, **FAST)
    assert target.read_bytes() == good
    assert not list(target.parent.glob("*.part"))  # no half file left behind


def test_truncated_body_is_retried_then_fails(server, tmp_path):
    StandIn.truncate = True
    with pytest.raises(FetchError, match="truncated|failed after"):
        fetch_layer("communes", tmp_path, base_url=server, **FAST)
    assert not (tmp_path / "official/communes.geojson").exists()


def test_client_error_fails_at_once(server, tmp_path):
    with pytest.raises(FetchError, match="HTTP 400"):
        fetch_layer("cru", tmp_path, base_url=server, **FAST)
    assert len(StandIn.requests) == 1


def test_client_error_quotes_the_answer(server, tmp_path):
    with pytest.raises(
        FetchError,
        match=r"^layer 'cru': http://127.0.0.1:\d+/geoserver/ows\?.*answered HTTP 400 "
        r"Bad Request \('\{\"error\": \"unknown layer\"\}'\)",
    ):
        fetch_layer("cru", tmp_path, base_url=server, **FAST)


@pytest.mark.parametrize(
    ("limit", "value"),
    [
        ("deadline", 0),
        ("deadline", float("inf")),
        ("request_deadline", -1),
        ("max_bytes", 0),
        ("max_pages", 0.5),
    ],
)
def test_bad_limits_are_refused(tmp_path, limit, value):
    with pytest.raises(ConfigError, match=f"fetch limit {limit}_s|fetch limit {limit}"):
        fetch_layer("communes", tmp_path, **{limit: value})


def test_monitoring_api(server, tmp_path):
    res = fetch_layer("income_equivalised", tmp_path, base_url=server, **FAST)
    assert res.features == 119
    inc = bxlplan.load("income_equivalised", tmp_path)
    assert inc["value"].notna().sum() == 118
    assert inc.loc[inc["code"] == 900, "value_flag"].item() == "ND"


def test_unreachable_server(tmp_path):
    with pytest.raises(FetchError, match="unreachable|failed after"):
        fetch_layer(
            "communes",
            tmp_path,
            base_url="http://127.0.0.1:9",
            timeout=1,
            retries=1,
            backoff=0,
        )


def test_layer_without_service(tmp_path):
    assert fetch_layer("streets", tmp_path).status == "not fetchable"


# --- a misbehaving server: every fault ends quickly in a FetchError naming the layer
# and the URL, after a bounded number of requests, with nothing written -------------


def _official(tmp_path):
    return tmp_path / "official/communes.geojson"


def _nothing_written(tmp_path):
    folder = tmp_path / "official"
    return not folder.exists() or not any(folder.iterdir())


def test_slow_drip_is_stopped_by_the_layer_deadline(server, tmp_path):
    StandIn.fault = "drip"  # a few bytes every 0.05 s: no single read ever times out
    t0 = time.monotonic()
    with pytest.raises(
        FetchError, match=r"layer 'communes': http://127\.0\.0\.1.*deadline of 1\.5 s"
    ) as exc:
        fetch_layer("communes", tmp_path, base_url=server, deadline=1.5, **FAST)
    assert time.monotonic() - t0 < 3.5
    assert "/geoserver/wfs" in str(exc.value)
    assert len(StandIn.requests) == 1
    assert _nothing_written(tmp_path)


def test_request_deadline_ends_each_attempt(server, tmp_path):
    StandIn.fault = "drip"
    t0 = time.monotonic()
    with pytest.raises(
        FetchError, match="failed after 3 attempt.*no complete answer within 0.4 s"
    ):
        fetch_layer(
            "communes",
            tmp_path,
            base_url=server,
            request_deadline=0.4,
            deadline=10,
            **FAST,
        )
    assert time.monotonic() - t0 < 3.0  # 3 attempts of 0.4 s, not 10 s
    assert len(StandIn.requests) == 3


def test_endless_body_is_cut_at_max_bytes(server, tmp_path):
    StandIn.fault = "endless"
    t0 = time.monotonic()
    with pytest.raises(
        FetchError, match=r"layer 'communes': http.*more than the 200,000 bytes"
    ):
        fetch_layer("communes", tmp_path, base_url=server, max_bytes=200_000, **FAST)
    assert time.monotonic() - t0 < 3.0
    assert len(StandIn.requests) == 1  # the same endless answer is not asked again
    assert _nothing_written(tmp_path)


def test_announced_huge_body_is_refused_before_reading(server, tmp_path):
    StandIn.fault = "huge"
    with pytest.raises(
        FetchError, match=r"announces 10,000,000,000 bytes.*--max-bytes"
    ):
        fetch_layer("communes", tmp_path, base_url=server, max_bytes=10**6, **FAST)
    assert len(StandIn.requests) == 1


def test_ignored_paging_is_detected(server, tmp_path):
    StandIn.fault = "ignore_paging"
    with pytest.raises(
        FetchError, match=r"layer 'communes'.*startIndex=10 repeats an earlier page"
    ):
        fetch_layer("communes", tmp_path, base_url=server, page_size=10, **FAST)
    assert len(StandIn.requests) == 2
    assert _nothing_written(tmp_path)


def test_endless_paging_stops_at_max_pages(server, tmp_path):
    StandIn.fault = "endless_paging"
    with pytest.raises(
        FetchError, match=r"layer 'communes'.*after 4 pages of 10 \(40 features"
    ):
        fetch_layer(
            "communes", tmp_path, base_url=server, page_size=10, max_pages=4, **FAST
        )
    assert len(StandIn.requests) == 4
    assert _nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            "html",
            r"answered an HTML page instead of JSON \(Content-Type: text/html\): first bytes '<!DOCTYPE html><html><head><title>Maintenance",
        ),
        (
            "ogc",
            r"answered an OGC exception report instead of JSON \(Content-Type: application/xml\), saying 'Feature type UrbisAdm:Mu unknown': first bytes '<\?xml",
        ),
        (
            "gzip",
            r"gzip-compressed bytes without declaring them.*first bytes b'\\x1f\\x8b",
        ),
    ],
    ids=["html", "ogc-exception", "gzip"],
)
def test_wrong_content_is_reported_not_retried(server, tmp_path, fault, message):
    StandIn.fault = fault
    with pytest.raises(FetchError, match=message) as exc:
        fetch_layer("communes", tmp_path, base_url=server, **FAST)
    assert str(exc.value).startswith(f"layer 'communes': {server}/geoserver/wfs?")
    assert "Not retried" in str(exc.value)
    assert len(StandIn.requests) == 1
    assert _nothing_written(tmp_path)


def test_retry_after_is_honoured(server, tmp_path):
    StandIn.fail_first = {"/geoserver/wfs": 1}
    StandIn.fail_code = 429
    StandIn.fail_headers = {"Retry-After": "1"}
    t0 = time.monotonic()
    res = fetch_layer("communes", tmp_path, base_url=server, deadline=5, **FAST)
    assert res.features == 19
    assert time.monotonic() - t0 >= 0.95  # waited as asked, not the 0.01 s backoff
    assert len(StandIn.requests) == 2


@pytest.mark.parametrize("when", ["seconds", "http-date"])
def test_retry_after_beyond_the_deadline_fails_at_once(server, tmp_path, when):
    StandIn.fail_first = {"/geoserver/wfs": 10}
    StandIn.fail_code = 429
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    StandIn.fail_headers = {"Retry-After": "60" if when == "seconds" else later}
    t0 = time.monotonic()
    with pytest.raises(
        FetchError,
        match=r"layer 'communes': http.*HTTP 429.*asked to wait (59|60) s, more than the 3 s left",
    ):
        fetch_layer("communes", tmp_path, base_url=server, deadline=3.5, **FAST)
    assert time.monotonic() - t0 < 1.0
    assert len(StandIn.requests) == 1


# --- valid JSON, wrong layer: validated before it replaces the good file -------------


def _shift(features, dx, dy):
    out = json.loads(json.dumps(features))
    for f in out:
        f["geometry"]["coordinates"] = [
            [[x + dx, y + dy] for x, y in ring] for ring in f["geometry"]["coordinates"]
        ]
    return out


def _without(features, field):
    out = json.loads(json.dumps(features))
    for f in out:
        del f["properties"][field]
    return out


LAMBERT = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::31370"}}
IMPOSSIBLE = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::999999"}}


@pytest.mark.parametrize(
    ("features", "crs", "message"),
    [
        (
            _shift(GOOD_FEATURES, -1.95, -1.95),
            WGS84,
            "do not fall in Brussels",
        ),  # Paris
        (
            _without(GOOD_FEATURES, "MU_NATIONAL_CODE"),
            WGS84,
            "required field 'code' is missing",
        ),
        (GOOD_FEATURES, LAMBERT, "look like longitude/latitude"),
        (GOOD_FEATURES, IMPOSSIBLE, "EPSG::999999.*not a known CRS"),
        (GOOD_FEATURES[:5], WGS84, "not plausible.*features = 5 is outside"),
    ],
    ids=[
        "outside-region",
        "missing-column",
        "lonlat-as-lambert",
        "impossible-crs",
        "5-of-19-communes",
    ],  # fmt: skip
)
def test_wrong_layer_never_replaces_the_good_file(
    server, tmp_path, features, crs, message
):
    fetch_layer("communes", tmp_path, base_url=server, **FAST)
    target = _official(tmp_path)
    sidecar = target.with_name(target.name + ".provenance.json")
    good, good_prov = target.read_bytes(), sidecar.read_bytes()
    StandIn.features, StandIn.crs = features, crs
    with pytest.raises(FetchError, match=f"layer 'communes': .*{server}.*{message}"):
        fetch_layer("communes", tmp_path, base_url=server, force=True, **FAST)
    assert target.read_bytes() == good and sidecar.read_bytes() == good_prov
    assert sorted(p.name for p in target.parent.iterdir()) == [
        "communes.geojson", "communes.geojson.provenance.json"
    ]  # fmt: skip


def test_empty_table_never_replaces_the_good_file(server, tmp_path):
    fetch_layer("income_equivalised", tmp_path, base_url=server, **FAST)
    target = tmp_path / "official/mdq_2498.json"
    good = target.read_bytes()
    StandIn.mdq_rows = []
    with pytest.raises(
        FetchError, match=r"layer 'income_equivalised': .*/mdq.*no rows"
    ):
        fetch_layer("income_equivalised", tmp_path, base_url=server, force=True, **FAST)
    assert target.read_bytes() == good
    assert len(bxlplan.load("income_equivalised", tmp_path)) == 119


# --- a killed fetch leaves a recognisable temporary folder; the next run removes it ---

KILLED_FETCH = textwrap.dedent(
    """
    import sys
    from bxlplan.loading.fetch import fetch_layer
    fetch_layer("communes", sys.argv[1], base_url=sys.argv[2], timeout=5, retries=0)
    """
)


def test_killed_fetch_leaves_nothing_the_next_run_keeps(server, tmp_path):
    StandIn.fault = "drip"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_FETCH, str(tmp_path), server], env=os.environ
    )
    try:
        end = time.monotonic() + 30  # the child imports geopandas first
        while time.monotonic() < end and proc.poll() is None:
            if StandIn.requests and list(
                tmp_path.glob("official/.communes.geojson.*.part")
            ):
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the fetch ended before it could be killed"
        time.sleep(0.3)  # a few dripped bytes are on disk
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    (stale,) = tmp_path.glob("official/.communes.geojson.*.part")
    assert not _official(tmp_path).exists()
    # a fetch of this layer running now (here: this process) is not disturbed
    running = stale.with_name(f".communes.geojson.{os.getpid()}-now.part")
    running.mkdir()

    StandIn.fault = None
    res = fetch_layer("communes", tmp_path, base_url=server, **FAST)
    assert res.status == "fetched" and res.cleaned == [stale]
    assert not stale.exists() and running.exists()
    assert len(bxlplan.load("communes", tmp_path)) == 19
