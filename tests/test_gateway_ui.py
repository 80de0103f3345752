"""The page's files served by the gateway (gateway/ui/, docs/ui.md): the
rendered routes (no Envoy), then the real Envoy answering them: every file at
/ui/<name> with its Content-Type, the security headers and an ETag it
revalidates with a 304; /ui/ the index, /ui a redirect to it; anything else
under /ui a 404 in the canonical error format; the files packaged for an
installed copy, and small."""

from __future__ import annotations

import tomllib
from pathlib import Path

import httpx
import pytest
import yaml
from setuptools.config.expand import canonic_data_files

from connlog.core.settings import Settings
from connlog.gateway import config

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = Settings(gateway_ingest_upstream="ingest.internal:7001", gateway_query_upstream="query.internal:7002",
                    gateway_vendor_sync_upstream="sync.internal:7003")
# The page's whole weight, uncompressed.
BUDGET_BYTES = 150 * 1024
TRANSCODER_OFF = {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}


def _route_config(envoy: dict) -> dict:
    [listener] = envoy["static_resources"]["listeners"]
    [manager] = listener["filter_chains"][0]["filters"]
    return manager["typed_config"]["route_config"]


def _headers(route: dict) -> dict[str, str]:
    return {h["header"]["key"]: h["header"]["value"] for h in route["response_headers_to_add"]}


@pytest.fixture(scope="module")
def rendered() -> dict:
    return _route_config(yaml.safe_load(config.render(SETTINGS)))


def test_every_file_of_the_folder_is_a_page_asset():
    folder = ROOT / "gateway" / "ui"
    on_disk = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    assert config.ui_folder() == folder
    assert config.ui_assets() == on_disk
    assert {p.name for p in on_disk} >= {"index.html", "app.js", "app.css"}


def test_each_file_has_a_route_with_its_type_and_the_security_headers(rendered):
    routes = rendered["virtual_hosts"][0]["routes"]
    served = {r["match"]["path"]: r for r in routes if "headers" not in r["match"] and "direct_response" in r
              and r["match"].get("path", "").startswith("/ui/")}
    for path in config.ui_assets():
        route = served[f"/ui/{path.name}"]
        assert route["direct_response"] == {"status": 200, "body": {"filename": str(path)}}
        headers = _headers(route)
        assert headers["content-type"] == config.UI_CONTENT_TYPES[path.suffix]
        assert headers["etag"] == config.etag(path.read_bytes())
        assert headers["cache-control"] == "no-cache"
        csp = {part.split()[0]: part.split()[1:] for part in headers["content-security-policy"].split("; ")}
        assert csp["default-src"] == ["'self'"] and csp["script-src"] == ["'self'"]
        assert csp["connect-src"] == ["'self'"] and csp["frame-ancestors"] == ["'none'"]
        assert not any("unsafe" in source for sources in csp.values() for source in sources)
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        # no transcoding (it would answer 404 for a path that is not a gRPC method), never a backend
        assert route["typed_per_filter_config"]["envoy.filters.http.grpc_json_transcoder"] == TRANSCODER_OFF
    assert served["/ui/"]["direct_response"] == served["/ui/index.html"]["direct_response"]
    # every file fits the direct responses' limit
    assert rendered["max_direct_response_body_size_bytes"] >= max(p.stat().st_size for p in config.ui_assets())


def test_the_pages_routes_never_reach_a_backend_and_precede_the_catch_all(rendered):
    routes = rendered["virtual_hosts"][0]["routes"]
    page = [i for i, r in enumerate(routes) if r["match"].get("path", r["match"].get("prefix", "")).startswith("/ui")]
    assert page == list(range(page[0], page[-1] + 1))  # together
    assert all("route" not in routes[i] for i in page)
    assert page[-1] < len(routes) - 1 and routes[-1]["match"] == {"prefix": "/"}
    assert routes[page[-1]] == {"match": {"prefix": "/ui/"}, "direct_response": config.NOT_FOUND,
                                "typed_per_filter_config": routes[page[-1]]["typed_per_filter_config"]}


def test_an_asset_of_an_unknown_kind_or_too_large_is_refused(tmp_path, monkeypatch):
    (tmp_path / "ui").mkdir()
    monkeypatch.setattr(config, "assets_folder", lambda: tmp_path)
    (tmp_path / "ui" / "index.html").write_text("<!doctype html>")
    assert [p.name for p in config.ui_assets()] == ["index.html"]
    (tmp_path / "ui" / "tool.exe").write_bytes(b"MZ")
    with pytest.raises(ValueError, match="no Content-Type"):
        config.ui_assets()
    (tmp_path / "ui" / "tool.exe").unlink()
    (tmp_path / "ui" / "big.js").write_bytes(b"x" * (config.UI_MAX_ASSET_BYTES + 1))
    with pytest.raises(ValueError, match="larger than"):
        config.ui_assets()


def test_the_files_are_packaged_and_small():
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    packaged = dict(canonic_data_files(table, ROOT))
    assert sorted(packaged["share/connlog/gateway/ui"]) == sorted(
        p.relative_to(ROOT).as_posix() for p in config.ui_assets())
    total = sum(p.stat().st_size for p in config.ui_assets())
    assert total < BUDGET_BYTES, f"the page weighs {total} bytes"


async def test_envoy_serves_the_page(gateway):
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        for path in config.ui_assets():
            reply = await http.get(f"/ui/{path.name}")
            assert reply.status_code == 200, path.name
            assert reply.content == path.read_bytes()
            assert reply.headers["content-type"] == config.UI_CONTENT_TYPES[path.suffix]
            assert reply.headers["x-content-type-options"] == "nosniff"
            assert reply.headers["referrer-policy"] == "no-referrer"
            assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]
            assert reply.headers["cache-control"] == "no-cache"
            # revalidated: the same ETag is a 304 without a body
            again = await http.get(f"/ui/{path.name}", headers={"if-none-match": reply.headers["etag"]})
            assert again.status_code == 304 and again.content == b""
            assert again.headers["etag"] == reply.headers["etag"]
            stale = await http.get(f"/ui/{path.name}", headers={"if-none-match": '"another"'})
            assert stale.status_code == 200 and stale.content == path.read_bytes()
        index = (config.ui_folder() / "index.html").read_bytes()
        for path in ("/ui/", "/ui/?network=N_1&client=aa:bb:cc:dd:ee:ff&view=grid"):
            reply = await http.get(path)
            assert reply.status_code == 200 and reply.content == index
            assert reply.headers["content-type"] == "text/html; charset=utf-8"
        moved = await http.get("/ui?view=grid")
        assert moved.status_code == 301 and moved.headers["location"].endswith("/ui/?view=grid")
        for path in ("/ui/nope.js", "/ui/sub/index.html", "/ui/index.html/", "/uix"):
            reply = await http.get(path)
            assert reply.status_code == 404, path
            assert reply.json() == {"code": 5, "message": reply.json()["message"]}
        assert (await http.get("/ui/nope.js")).json() == {"code": 5, "message": "Not found"}
        # the rest of the gateway is unchanged: a REST call still transcodes
        assert (await http.get("/v1/networks/N_1/connectionEvents")).status_code == 401
