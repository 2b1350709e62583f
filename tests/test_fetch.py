"""The fetcher against a local stand-in of the official services (no network needed).

The stand-in answers like GeoServer (WFS 2.0 GetFeature, GeoJSON, paging with
count/startIndex, numberMatched) and like the Monitoring API; it can fail on purpose:
a 500 before succeeding, a truncated body, a 404.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import bxlplan
from bxlplan.errors import FetchError
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


class StandIn(BaseHTTPRequestHandler):
    features = _features(25)
    fail_first: dict[str, int] = {}
    truncate = False
    requests: list[str] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, code, body: bytes, length=None):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header(
            "Content-Length", str(length if length is not None else len(body))
        )
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        type(self).requests.append(self.path)
        key = url.path
        if type(self).fail_first.get(key, 0) > 0:
            type(self).fail_first[key] -= 1
            return self._send(500, b"Internal Server Error")
        if url.path.endswith("/geoserver/wfs") or url.path.endswith("/geoserver/ows"):
            if q.get("typeNames") not in ("UrbisAdm:Mu",):
                return self._send(400, b'{"error": "unknown layer"}')
            start, count = int(q.get("startIndex", 0)), int(q.get("count", 1000))
            page = self.features[start : start + count]
            body = json.dumps({
                "type": "FeatureCollection", "features": page, "numberMatched": len(self.features),
                "numberReturned": len(page), "totalFeatures": len(self.features),
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4326"}},
            }).encode()  # fmt: skip
            if type(self).truncate:
                return self._send(200, body[: len(body) // 2], length=len(body))
            return self._send(200, body)
        if url.path.endswith("/mdq/dataset/2498"):
            rows = [{"id": i, "value": 20000 + i, "flag": None} for i in range(1, 119)]
            rows += [{"id": 900, "value": None, "flag": "ND"}]
            return self._send(200, json.dumps(rows).encode())
        return self._send(404, b"not found")


@pytest.fixture
def server():
    StandIn.fail_first = {}
    StandIn.truncate = False
    StandIn.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


FAST = {"timeout": 5.0, "retries": 2, "backoff": 0.01}


def test_wfs_paging_and_provenance(server, tmp_path):
    res = fetch_layer("communes", tmp_path, base_url=server, page_size=10, **FAST)
    assert res.status == "fetched" and res.features == 25
    assert sum("GetFeature" in r for r in StandIn.requests) == 3  # 10 + 10 + 5
    assert "outputFormat=application%2Fjson" in StandIn.requests[0]
    prov = json.loads(
        (tmp_path / "official/communes.geojson.provenance.json").read_text()
    )
    assert prov["features"] == 25 and prov["url"].startswith(server)
    # the fetched file is what load() now reads, with the URL in its provenance
    communes = bxlplan.load("communes", tmp_path)
    assert len(communes) == 25 and communes.crs.to_epsg() == 31370
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
    assert res.features == 25
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
