"""The Kubernetes manifests agree with the code (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from connlog.cli import _parser
from connlog.core.server import LIVENESS
from connlog.core.settings import Settings
from connlog.gateway.config import render

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes"


def _documents() -> list[dict]:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]
    return docs


def _pod_spec(doc: dict) -> dict:
    """The pod spec of a workload (a CronJob's is inside its job template)."""
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec.get("template", {}).get("spec", {})


def _setting_names() -> set[str]:
    names = set()
    for field_name, field in Settings.model_fields.items():
        names.add(f"CONNLOG_{field_name.upper()}")
        alias = field.validation_alias
        if alias is not None:
            names.update(str(choice) for choice in getattr(alias, "choices", [alias]))
    return names


def test_every_listed_file_exists_and_parses():
    listed = set(yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    assert all("kind" in d and "metadata" in d for d in _documents())


def test_env_names_are_real_settings():
    valid = _setting_names()
    for doc in _documents():
        if doc["kind"] == "ConfigMap":
            assert set(doc["data"]) <= valid, set(doc["data"]) - valid
        if doc["kind"] == "Secret":
            assert set(doc["stringData"]) <= valid
        for container in _pod_spec(doc).get("containers", []):
            for env in container.get("env", []):
                if container["image"] == "connlog":
                    assert env["name"] in valid, env["name"]
    # every ConfigMap value is accepted by the settings object
    [config] = [d for d in _documents() if d["kind"] == "ConfigMap"]
    Settings(**{k.removeprefix("CONNLOG_").lower(): v for k, v in config["data"].items()})


@pytest.mark.parametrize(("service", "port", "metrics"),
                         [("ingest", 50051, 9101), ("query", 50052, 9102), ("vendor-sync", 50053, 9103)])
def test_service_deployments(service, port, metrics):
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _documents()}
    deployment = docs[("Deployment", service)]
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert container["args"] == ["serve", service]
    assert {p["containerPort"] for p in container["ports"]} == {port, metrics}
    field = service.replace("-", "_")
    assert Settings.model_fields[f"{field}_port"].default == port
    assert Settings.model_fields[f"{field}_metrics_port"].default == metrics
    assert container["readinessProbe"]["grpc"]["port"] == port
    assert container["livenessProbe"]["grpc"]["port"] == port
    # liveness must not follow the database (readiness does): a database
    # outage takes pods out of service, it does not restart them
    assert container["livenessProbe"]["grpc"]["service"] == LIVENESS
    assert "service" not in container["readinessProbe"]["grpc"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"]["memory"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    config = next(d for d in _documents() if d["kind"] == "ConfigMap")["data"]
    grace = float(config["CONNLOG_SHUTDOWN_GRACE_SECONDS"])
    assert pod["spec"]["terminationGracePeriodSeconds"] > grace
    service_doc = docs[("Service", service)]
    assert service_doc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(metrics)
    assert ("PodDisruptionBudget", service) in docs


def test_gateway_upstreams_point_at_the_services():
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _documents()}
    config = docs[("ConfigMap", "connlog-settings")]["data"]
    for service, port in (("ingest", 50051), ("query", 50052)):
        host, _, upstream_port = config[f"CONNLOG_GATEWAY_{service.upper()}_UPSTREAM"].partition(":")
        assert ("Service", host) in docs and int(upstream_port) == port
    rendered = render(Settings(host="0.0.0.0", gateway_ingest_upstream=config["CONNLOG_GATEWAY_INGEST_UPSTREAM"],
                               gateway_query_upstream=config["CONNLOG_GATEWAY_QUERY_UPSTREAM"]))
    envoy = yaml.safe_load(rendered)
    endpoints = {c["name"]: c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
                 ["socket_address"] for c in envoy["static_resources"]["clusters"]}
    assert endpoints["ingest"] == {"address": "ingest", "port_value": 50051}
    assert endpoints["query"] == {"address": "query", "port_value": 50052}
    assert set(envoy["admin"]["address"]) == {"pipe"}  # no TCP admin port
    gateway = docs[("Deployment", "gateway")]["spec"]["template"]["spec"]["containers"][0]
    assert gateway["args"] == ["serve", "gateway"]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_kubernetes_gateway_config_validates(tmp_path):
    import subprocess

    from connlog.gateway.config import envoy_binary

    config = yaml.safe_load((DEPLOY / "config.yaml").read_text())["data"]
    settings = Settings(host="0.0.0.0", gateway_ingest_upstream=config["CONNLOG_GATEWAY_INGEST_UPSTREAM"],
                        gateway_query_upstream=config["CONNLOG_GATEWAY_QUERY_UPSTREAM"])
    path = tmp_path / "envoy.yaml"
    path.write_text(render(settings))
    result = subprocess.run([envoy_binary(settings), "--mode", "validate", "-c", str(path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(("kind", "name", "command"), [
    ("Job", "connlog-migrate", ["db", "migrate"]),
    ("CronJob", "connlog-retention", ["retention", "run", "--once"]),
])
def test_database_jobs_run_connlog_commands_like_the_services(kind, name, command):
    """The migrate Job and the retention CronJob: a real ``connlog`` command,
    the image, settings and database secret of the services, and their
    hardening."""
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _documents()}
    pod = _pod_spec(docs[(kind, name)])
    [container] = pod["containers"]
    assert container["args"] == command
    parsed = vars(_parser().parse_args(container["args"]))
    assert parsed["command"] == command[0]
    if kind == "CronJob":
        assert parsed == {"command": "retention", "retention_command": "run", "once": True}
    ingest = docs[("Deployment", "ingest")]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == ingest["image"] == "connlog"
    assert container["envFrom"] == ingest["envFrom"]
    assert {"configMapRef": {"name": "connlog-settings"}} in container["envFrom"]
    assert {"secretRef": {"name": "connlog-database"}} in container["envFrom"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"]["memory"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["restartPolicy"] == "OnFailure"


def test_retention_cronjob_runs_often_enough_and_never_twice_at_once():
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _documents()}
    cronjob = docs[("CronJob", "connlog-retention")]["spec"]
    minute, hour, day, month, weekday = cronjob["schedule"].split()
    # at least daily, well within the days created ahead (a missed run or two changes nothing)
    assert (day, month, weekday) == ("*", "*", "*") and minute.isdigit()
    config = next(d for d in _documents() if d["kind"] == "ConfigMap")["data"]
    ahead = int(config.get("CONNLOG_PARTITIONS_AHEAD_DAYS", Settings.model_fields["partitions_ahead_days"].default))
    assert hour == "*" or ahead >= 2
    assert cronjob["concurrencyPolicy"] == "Forbid"
    assert cronjob["jobTemplate"]["spec"]["backoffLimit"] >= 1
