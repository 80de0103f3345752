"""The Kubernetes manifests agree with the code, and hold what they promise
(no cluster needed).

Every overlay (deploy/kubernetes/overlays/dev, .../prod) is rendered with
``kubectl kustomize`` of Debian's kubectl 1.20 (kustomize v2.0.3), unpacked
into .venv/kubectl by deploy/tools/get-kubectl.sh: that one tool, on a
developer's machine as in CI, never another kubectl or kustomize found on
PATH (the kustomizations keep to what v2.0.3 knows, and current kustomize
renders them to the same objects: deploy/README.md). Then checked
against the code (ports, settings names, CLI commands, probes), for its
shape (dev: one replica each; prod: HPAs, PDBs, anti-affinity, a
CloudNativePG cluster, no Secret), with a small evaluator of its
NetworkPolicies, strictly against the Kubernetes and CRD schemas, and by
checkov. A missing tool fails these tests, it never skips them (.ci/run
installs checkov and runs deploy/tools/get-kubectl.sh).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from connlog.cli import _parser
from connlog.core.server import LIVENESS
from connlog.core.settings import Settings
from connlog.gateway.config import render

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "kubernetes"
SCHEMAS = ROOT / "deploy" / "schemas"
OVERLAYS = ("dev", "prod")
# Kubernetes versions the overlays are validated against: those CloudNativePG
# 1.30 supports (1.34-1.36).
KUBERNETES_VERSIONS = ("1.34", "1.36")
# The custom resources of the prod overlay and their vendored schemas
# (deploy/schemas/README.md).
CRD_SCHEMAS = {
    ("postgresql.cnpg.io/v1", "Cluster"): "postgresql.cnpg.io_v1_cluster.json",
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): "postgresql.cnpg.io_v1_scheduledbackup.json",
    ("barmancloud.cnpg.io/v1", "ObjectStore"): "barmancloud.cnpg.io_v1_objectstore.json",
}
# Environment names the manifests set for a setting the code does not have
# yet (none now: DATABASE_READ_URL is Settings.database_read_url);
# test_pending_settings_are_not_settings_yet says when to drop one from here.
PENDING_SETTINGS: set[str] = set()
# The Secrets prod references and never defines (docs/operations.md lists them).
PROD_SECRETS = {"connlog-db-app", "connlog-sealing-keys", "connlog-sync-service", "connlog-backup-s3"}
DATABASE_CLIENTS = ("ingest", "query", "vendor-sync", "connlog-migrate", "connlog-retention")
CNPG_CLUSTER = "connlog-db"


# -- rendering ---------------------------------------------------------------


KUBECTL = ROOT / ".venv" / "kubectl" / "usr" / "bin" / "kubectl"


def _kustomize_command() -> list[str]:
    if not KUBECTL.exists():
        pytest.fail(f"{KUBECTL.relative_to(ROOT)} is missing: run deploy/tools/get-kubectl.sh "
                    "(Debian's kubectl 1.20, unpacked there; .ci/run runs it)")
    return [str(KUBECTL), "kustomize"]


@functools.cache
def _rendered(overlay: str) -> str:
    result = subprocess.run([*_kustomize_command(), str(DEPLOY / "overlays" / overlay)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _documents(overlay: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(_rendered(overlay)) if d]


def _by_name(overlay: str) -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in _documents(overlay)}


def _pod_template(doc: dict) -> dict:
    """The pod template of a workload (a CronJob's is inside its job template)."""
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec.get("template", {})


def _pod_spec(doc: dict) -> dict:
    return _pod_template(doc).get("spec", {})


def _config(overlay: str) -> dict[str, str]:
    return _by_name(overlay)[("ConfigMap", "connlog-settings")]["data"]


def _is_connlog(container: dict) -> bool:
    return container["image"].split(":")[0].split("@")[0] == "connlog"


def _setting_names() -> set[str]:
    names = set()
    for field_name, field_info in Settings.model_fields.items():
        names.add(f"CONNLOG_{field_name.upper()}")
        alias = field_info.validation_alias
        if alias is not None:
            names.update(str(choice) for choice in getattr(alias, "choices", [alias]))
    return names


def _database_url_source(container: dict) -> Any:
    """Where a container's DATABASE_URL comes from: a Secret by envFrom, or
    one key of a Secret."""
    for env in container.get("env", []):
        if env["name"] == "DATABASE_URL":
            return env.get("valueFrom") or env.get("value")
    refs = [e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e]
    return {"envFrom": refs} if refs else None


# -- the files ---------------------------------------------------------------


@pytest.mark.parametrize("folder", ["base", "overlays/dev", "overlays/prod"])
def test_every_file_is_listed_and_parses(folder):
    directory = DEPLOY / folder
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert all((directory / b).is_dir() for b in kustomization.get("bases", []))
    json_patches = {p["path"] for p in kustomization.get("patchesJson6902", [])}
    listed = set(kustomization.get("resources", [])) | set(kustomization.get("patchesStrategicMerge", []))
    on_disk = {str(p.relative_to(directory)) for p in directory.rglob("*.yaml")} - {"kustomization.yaml"}
    assert listed | json_patches == on_disk
    for name in on_disk - json_patches:
        assert all("kind" in d and "metadata" in d for d in yaml.safe_load_all((directory / name).read_text()) if d)
    for name in json_patches:
        operations = yaml.safe_load((directory / name).read_text())
        assert operations and all({"op", "path"} <= set(o) for o in operations)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_into_the_namespace(overlay):
    docs = _documents(overlay)
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"] == ["connlog"]
    assert all(d["metadata"].get("namespace") == "connlog" for d in docs if d["kind"] != "Namespace")


# -- agreement with the code -------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_env_names_are_real_settings(overlay):
    """Every variable a connlog container gets is a setting, one of
    PENDING_SETTINGS, or an input (from a Secret) of another variable's
    ``$(NAME)`` expansion."""
    valid = _setting_names()
    docs = _documents(overlay)
    by_name = _by_name(overlay)
    config = _config(overlay)
    assert set(config) <= valid, set(config) - valid
    for doc in docs:
        for container in _pod_spec(doc).get("containers", []):
            if not _is_connlog(container):
                continue
            env = container.get("env", [])
            expanded = {m for e in env for m in re.findall(r"\$\((\w+)\)", e.get("value", ""))}
            for entry in env:
                name = entry["name"]
                if name in valid:
                    continue
                if name in PENDING_SETTINGS:
                    assert container["name"] == "query", (name, container["name"])
                    continue
                assert name in expanded and "secretKeyRef" in entry.get("valueFrom", {}), (doc["metadata"], name)
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    secret = by_name.get(("Secret", source["secretRef"]["name"]))
                    if secret is not None:  # defined here (dev): every key a setting
                        assert set(secret.get("data", {})) | set(secret.get("stringData", {})) <= valid
    # every ConfigMap value is accepted by the settings object
    Settings(**{k.removeprefix("CONNLOG_").lower(): v for k, v in config.items()})


def test_pending_settings_are_not_settings_yet():
    """When Settings gains one of PENDING_SETTINGS, drop it from there: from
    then on test_env_names_are_real_settings checks it like any other."""
    assert not PENDING_SETTINGS & _setting_names(), "Settings has it now: remove it from PENDING_SETTINGS"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize(("service", "port", "metrics"),
                         [("ingest", 50051, 9101), ("query", 50052, 9102), ("vendor-sync", 50053, 9103)])
def test_service_deployments(overlay, service, port, metrics):
    docs = _by_name(overlay)
    deployment = docs[("Deployment", service)]
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert container["args"] == ["serve", service]
    assert {p["containerPort"] for p in container["ports"]} == {port, metrics}
    field_name = service.replace("-", "_")
    assert Settings.model_fields[f"{field_name}_port"].default == port
    assert Settings.model_fields[f"{field_name}_metrics_port"].default == metrics
    assert container["readinessProbe"]["grpc"]["port"] == port
    assert container["livenessProbe"]["grpc"]["port"] == port
    # liveness must not follow the database (readiness does): a database
    # outage takes pods out of service, it does not restart them
    assert container["livenessProbe"]["grpc"]["service"] == LIVENESS
    assert "service" not in container["readinessProbe"]["grpc"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"]["memory"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    grace = float(_config(overlay)["CONNLOG_SHUTDOWN_GRACE_SECONDS"])
    assert pod["spec"]["terminationGracePeriodSeconds"] > grace
    service_doc = docs[("Service", service)]
    assert service_doc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(metrics)
    assert _database_url_source(container) is not None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_upstreams_point_at_the_services(overlay):
    docs = _by_name(overlay)
    config = _config(overlay)
    for service, port in (("ingest", 50051), ("query", 50052), ("vendor-sync", 50053)):
        key = f"CONNLOG_GATEWAY_{service.upper().replace('-', '_')}_UPSTREAM"
        host, _, upstream_port = config[key].partition(":")
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
    from connlog.gateway.config import envoy_binary

    config = _config("prod")
    assert config == _config("dev")
    settings = Settings(host="0.0.0.0", gateway_ingest_upstream=config["CONNLOG_GATEWAY_INGEST_UPSTREAM"],
                        gateway_query_upstream=config["CONNLOG_GATEWAY_QUERY_UPSTREAM"])
    path = tmp_path / "envoy.yaml"
    path.write_text(render(settings))
    result = subprocess.run([envoy_binary(settings), "--mode", "validate", "-c", str(path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize(("kind", "name", "command"), [
    ("Job", "connlog-migrate", ["db", "migrate"]),
    ("CronJob", "connlog-retention", ["retention", "run", "--once"]),
])
def test_database_jobs_run_connlog_commands_like_the_services(overlay, kind, name, command):
    """The migrate Job and the retention CronJob: a real ``connlog`` command,
    the image, settings and database URL of the services, and their
    hardening."""
    docs = _by_name(overlay)
    pod = _pod_spec(docs[(kind, name)])
    [container] = pod["containers"]
    assert container["args"] == command
    parsed = vars(_parser().parse_args(container["args"]))
    assert parsed["command"] == command[0]
    if kind == "CronJob":
        assert parsed == {"command": "retention", "retention_command": "run", "once": True}
    ingest = docs[("Deployment", "ingest")]["spec"]["template"]["spec"]["containers"][0]
    assert _is_connlog(container) and container["image"] == ingest["image"]
    assert container["envFrom"] == ingest["envFrom"]
    assert {"configMapRef": {"name": "connlog-settings"}} in container["envFrom"]
    assert _database_url_source(container) == _database_url_source(ingest) is not None
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"]["memory"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["restartPolicy"] == "OnFailure"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_retention_cronjob_runs_often_enough_and_never_twice_at_once(overlay):
    cronjob = _by_name(overlay)[("CronJob", "connlog-retention")]["spec"]
    minute, hour, day, month, weekday = cronjob["schedule"].split()
    # at least daily, well within the days created ahead (a missed run or two changes nothing)
    assert (day, month, weekday) == ("*", "*", "*") and minute.isdigit()
    config = _config(overlay)
    ahead = int(config.get("CONNLOG_PARTITIONS_AHEAD_DAYS", Settings.model_fields["partitions_ahead_days"].default))
    assert hour == "*" or ahead >= 2
    assert cronjob["concurrencyPolicy"] == "Forbid"
    assert cronjob["jobTemplate"]["spec"]["backoffLimit"] >= 1


# -- the overlays' shapes ----------------------------------------------------


def test_dev_runs_one_replica_of_everything_and_its_own_postgresql():
    docs = _documents("dev")
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    assert {d["metadata"]["name"] for d in workloads} == {"gateway", "ingest", "query", "vendor-sync", "postgres"}
    assert all(d["spec"]["replicas"] == 1 for d in workloads)
    assert not [d for d in docs if d["kind"] in ("HorizontalPodAutoscaler", "Cluster")]
    # dev's Secrets are generated, marked, and hold the dev server's URL
    secrets = [d for d in docs if d["kind"] == "Secret"]
    assert secrets and all(d["metadata"]["labels"]["connlog.io/dev-only"] == "true" for d in secrets)


@pytest.mark.parametrize("service", ["gateway", "ingest", "query"])
def test_prod_scales_each_stateless_service(service):
    docs = _by_name("prod")
    deployment = docs[("Deployment", service)]
    pod = deployment["spec"]["template"]
    # the HPA owns the replica count: re-applying must not reset it
    assert "replicas" not in deployment["spec"]
    hpa = docs[("HorizontalPodAutoscaler", service)]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    [metric] = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    [container] = pod["spec"]["containers"]
    assert container["resources"]["requests"]["cpu"]  # what the HPA's utilization is of
    assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]
    pdb = docs[("PodDisruptionBudget", service)]["spec"]
    assert pdb["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert 1 <= pdb["minAvailable"] < hpa["minReplicas"]
    [term] = pod["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_prod_runs_vendor_sync_replicas_that_share_sources():
    """vendor-sync replicas share sources by leases: a fixed count of at
    least two, spread over nodes, one kept through drains, rolled one at a
    time (a stopping replica releases its leases)."""
    docs = _by_name("prod")
    deployment = docs[("Deployment", "vendor-sync")]
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert ("HorizontalPodAutoscaler", "vendor-sync") not in docs
    pod = spec["template"]
    pdb = docs[("PodDisruptionBudget", "vendor-sync")]["spec"]
    assert pdb["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert 1 <= pdb["minAvailable"] < spec["replicas"]
    [term] = pod["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_prod_database_is_a_cloudnativepg_cluster_with_backups():
    docs = _by_name("prod")
    assert not [k for k in docs if k[0] == "StatefulSet"]
    cluster = docs[("Cluster", CNPG_CLUSTER)]["spec"]
    assert cluster["instances"] == 3
    assert cluster["bootstrap"]["initdb"] == {"database": "connlog", "owner": "connlog"}
    [plugin] = cluster["plugins"]
    assert plugin["name"] == "barman-cloud.cloudnative-pg.io" and plugin["isWALArchiver"] is True
    store = docs[("ObjectStore", plugin["parameters"]["barmanObjectName"])]["spec"]["configuration"]
    credentials = store["s3Credentials"]
    assert {ref["name"] for ref in credentials.values()} == {"connlog-backup-s3"}
    backup = docs[("ScheduledBackup", "connlog-db-nightly")]["spec"]
    assert backup["cluster"] == {"name": CNPG_CLUSTER} and backup["method"] == "plugin"
    assert backup["pluginConfiguration"]["name"] == plugin["name"]
    # writers: the -rw URL of the Secret CloudNativePG makes
    app_uri = {"secretKeyRef": {"name": f"{CNPG_CLUSTER}-app", "key": "uri"}}
    for workload in DATABASE_CLIENTS:
        kind = {"connlog-migrate": "Job", "connlog-retention": "CronJob"}.get(workload, "Deployment")
        [container] = _pod_spec(docs[(kind, workload)])["containers"]
        assert _database_url_source(container) == app_uri, workload
        assert not [e for e in container["envFrom"] if "secretRef" in e]
    # the query service's reads: the -ro service, user and password from that Secret
    [query] = _pod_spec(docs[("Deployment", "query")])["containers"]
    env = {e["name"]: e for e in query["env"]}
    read_url = env["DATABASE_READ_URL"]["value"]
    match = re.fullmatch(r"postgresql://\$\((\w+)\):\$\((\w+)\)@([\w-]+):5432/connlog", read_url)
    assert match and match[3] == f"{CNPG_CLUSTER}-ro"
    names = [e["name"] for e in query["env"]]
    for variable, key in ((match[1], "username"), (match[2], "password")):
        assert env[variable]["valueFrom"] == {"secretKeyRef": {"name": f"{CNPG_CLUSTER}-app", "key": key}}
        assert names.index(variable) < names.index("DATABASE_READ_URL")  # expanded only if defined before


def _secret_references(doc: dict) -> set[str]:
    names = set()
    pod = _pod_spec(doc)
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        names |= {e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e}
        names |= {e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", [])
                  if "secretKeyRef" in e.get("valueFrom", {})}
    names |= {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
    if doc["kind"] == "ObjectStore":
        names |= {ref["name"] for ref in doc["spec"]["configuration"]["s3Credentials"].values()}
    return names


def test_prod_secrets_only_by_reference_and_each_documented():
    docs = _documents("prod")
    assert not [d for d in docs if d["kind"] == "Secret"]
    referenced = set().union(*(_secret_references(d) for d in docs))
    assert referenced == PROD_SECRETS
    operations = (ROOT / "docs" / "operations.md").read_text()
    readme = (ROOT / "deploy" / "README.md").read_text()
    for name in PROD_SECRETS:
        assert f"`{name}`" in operations and name in readme, name


# -- network policies --------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """A pod (namespace, its labels, the namespace's labels) or an address
    outside the cluster. Pod addresses are in the cluster's private ranges:
    no ipBlock of these policies admits them, and none is meant to."""

    namespace: str | None = None
    labels: dict = field(default_factory=dict, hash=False)
    namespace_labels: dict = field(default_factory=dict, hash=False)
    ip: str | None = None


def _selects(selector: dict | None, labels: dict) -> bool:
    if selector is None:
        return False
    if not (selector.get("matchLabels", {}).items() <= labels.items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        ok = {"In": key in labels and labels[key] in values, "NotIn": key not in labels or labels[key] not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}[operator]
        if not ok:
            return False
    return True


def _peer_matches(rule_peer: dict, peer: Peer, policy_namespace: str) -> bool:
    if "ipBlock" in rule_peer:
        if peer.ip is None:
            return False
        address = ipaddress.ip_address(peer.ip)
        block = rule_peer["ipBlock"]
        network = ipaddress.ip_network(block["cidr"])
        return (address.version == network.version and address in network
                and not any(address in ipaddress.ip_network(e) for e in block.get("except", [])
                            if ipaddress.ip_network(e).version == address.version))
    if peer.namespace is None:
        return False
    if "namespaceSelector" in rule_peer:
        if not _selects(rule_peer["namespaceSelector"], peer.namespace_labels):
            return False
    elif peer.namespace != policy_namespace:
        return False
    return _selects(rule_peer.get("podSelector", {}), peer.labels)


def _port_matches(rule: dict, port: int, protocol: str) -> bool:
    if "ports" not in rule:
        return True
    for entry in rule["ports"]:
        assert isinstance(entry.get("port", 0), int), "named ports: the evaluator knows numbers only"
        if entry.get("protocol", "TCP") != protocol:
            continue
        low = entry.get("port")
        if low is None or low <= port <= entry.get("endPort", low):
            return True
    return False


def _admits(policies: list[dict], pod: Peer, direction: str, other: Peer, port: int, protocol: str) -> bool:
    """Whether the policies selecting ``pod`` let this connection through in
    ``direction`` (Ingress: ``other`` is the source; Egress: the destination)."""
    selecting = [p for p in policies if p["metadata"]["namespace"] == pod.namespace
                 and _selects(p["spec"]["podSelector"], pod.labels)
                 and direction in p["spec"].get("policyTypes", ["Ingress"])]
    if not selecting:
        return True  # not isolated in this direction
    key = {"Ingress": ("ingress", "from"), "Egress": ("egress", "to")}[direction]
    for policy in selecting:
        for rule in policy["spec"].get(key[0], []):
            peers = rule.get(key[1])
            if (not peers or any(_peer_matches(p, other, policy["metadata"]["namespace"]) for p in peers)) \
                    and _port_matches(rule, port, protocol):
                return True
    return False


def _allowed(policies: list[dict], source: Peer, destination: Peer, port: int, protocol: str = "TCP") -> bool:
    """A connection goes through when the source's egress and the
    destination's ingress both allow it (pods of other namespaces and
    addresses outside the cluster are under no policy of these)."""
    return (_admits(policies, source, "Egress", destination, port, protocol)
            and _admits(policies, destination, "Ingress", source, port, protocol))


def _peers(overlay: str) -> dict[str, Peer]:
    docs = _documents(overlay)
    [namespace] = [d for d in docs if d["kind"] == "Namespace"]
    ns_labels = {"kubernetes.io/metadata.name": "connlog", **namespace["metadata"].get("labels", {})}
    peers = {}
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob"):
            labels = _pod_template(doc)["metadata"]["labels"]
            peers[doc["metadata"]["name"].removeprefix("connlog-")] = Peer("connlog", labels, ns_labels)
    if overlay == "dev":
        peers["database"] = peers.pop("postgres")
    else:  # the labels CloudNativePG gives its instances
        peers["database"] = Peer("connlog", {"cnpg.io/cluster": CNPG_CLUSTER, "cnpg.io/instanceRole": "primary",
                                             "role": "primary"}, ns_labels)

    def elsewhere(namespace: str, labels: dict, **namespace_labels: str) -> Peer:
        return Peer(namespace, labels, {"kubernetes.io/metadata.name": namespace, **namespace_labels})

    peers |= {
        "kube-dns": elsewhere("kube-system", {"k8s-app": "kube-dns"}),
        "scraper": elsewhere("monitoring", {"app": "prometheus"}, **{"connlog.io/metrics-scraper": "true"}),
        "other-namespace": elsewhere("default", {"app": "prometheus"}),
        "cnpg-operator": elsewhere("cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg"}),
        "client": Peer(ip="198.51.100.7"),  # a client on the internet
        "vendor-api": Peer(ip="203.0.113.10"),
        "vendor-api-v6": Peer(ip="2001:db8::10"),
        "private": Peer(ip="10.0.0.5"),
        "private-172": Peer(ip="172.20.1.1"),
        "private-v6": Peer(ip="fd00::5"),
        "cgnat": Peer(ip="100.64.0.1"),
        "metadata": Peer(ip="169.254.169.254"),
    }
    return peers


# (source, destination, port, protocol, allowed in dev, allowed in prod)
FLOWS = [
    # only the gateway is reachable from outside the namespace
    ("client", "gateway", 8080, "TCP", True, True),
    ("other-namespace", "gateway", 8080, "TCP", True, True),
    ("client", "ingest", 50051, "TCP", False, False),
    ("client", "query", 50052, "TCP", False, False),
    ("client", "vendor-sync", 50053, "TCP", False, False),
    ("client", "database", 5432, "TCP", False, False),
    ("other-namespace", "query", 50052, "TCP", False, False),
    ("other-namespace", "ingest", 50051, "TCP", False, False),
    ("other-namespace", "database", 5432, "TCP", False, False),
    ("client", "gateway", 9901, "TCP", False, False),  # no admin port, nor any other
    # the gateway reaches the services, and nothing else
    ("gateway", "ingest", 50051, "TCP", True, True),
    ("gateway", "query", 50052, "TCP", True, True),
    ("gateway", "vendor-sync", 50053, "TCP", True, True),
    ("gateway", "ingest", 9101, "TCP", False, False),
    ("gateway", "database", 5432, "TCP", False, False),
    ("gateway", "vendor-api", 443, "TCP", False, False),
    # ingest is reachable from vendor-sync; the services not from each other otherwise
    ("vendor-sync", "ingest", 50051, "TCP", True, True),
    ("vendor-sync", "query", 50052, "TCP", False, False),
    ("query", "ingest", 50051, "TCP", False, False),
    ("ingest", "query", 50052, "TCP", False, False),
    ("migrate", "ingest", 50051, "TCP", False, False),
    ("database", "ingest", 50051, "TCP", False, False),
    # every database client reaches PostgreSQL, only on its port
    ("ingest", "database", 5432, "TCP", True, True),
    ("query", "database", 5432, "TCP", True, True),
    ("vendor-sync", "database", 5432, "TCP", True, True),
    ("migrate", "database", 5432, "TCP", True, True),
    ("retention", "database", 5432, "TCP", True, True),
    ("ingest", "database", 22, "TCP", False, False),
    # vendor-sync: 443 outside the cluster's private ranges, nothing else
    ("vendor-sync", "vendor-api", 443, "TCP", True, True),
    ("vendor-sync", "vendor-api-v6", 443, "TCP", True, True),
    ("vendor-sync", "vendor-api", 80, "TCP", False, False),
    ("vendor-sync", "private", 443, "TCP", False, False),
    ("vendor-sync", "private", 5432, "TCP", False, False),
    ("vendor-sync", "private-172", 443, "TCP", False, False),
    ("vendor-sync", "private-v6", 443, "TCP", False, False),
    ("vendor-sync", "cgnat", 443, "TCP", False, False),
    ("vendor-sync", "metadata", 80, "TCP", False, False),
    ("vendor-sync", "metadata", 443, "TCP", False, False),
    ("ingest", "vendor-api", 443, "TCP", False, False),
    ("query", "vendor-api", 443, "TCP", False, False),
    ("retention", "vendor-api", 443, "TCP", False, False),
    # DNS for every pod
    ("ingest", "kube-dns", 53, "UDP", True, True),
    ("gateway", "kube-dns", 53, "UDP", True, True),
    ("vendor-sync", "kube-dns", 53, "TCP", True, True),
    ("database", "kube-dns", 53, "UDP", True, True),
    ("ingest", "kube-dns", 80, "TCP", False, False),
    # metrics only from the labelled scrapers' namespace
    ("scraper", "ingest", 9101, "TCP", True, True),
    ("scraper", "query", 9102, "TCP", True, True),
    ("scraper", "vendor-sync", 9103, "TCP", True, True),
    ("scraper", "ingest", 50051, "TCP", False, False),
    ("other-namespace", "ingest", 9101, "TCP", False, False),
    # the database: dev's reaches nothing; CloudNativePG's its operator, its
    # peers, the API server and the object store
    ("database", "vendor-api", 443, "TCP", False, True),
    ("database", "private", 5432, "TCP", False, False),
    ("database", "database", 5432, "TCP", False, True),
    ("cnpg-operator", "database", 8000, "TCP", False, True),
    ("other-namespace", "database", 8000, "TCP", False, False),
    ("scraper", "database", 9187, "TCP", False, True),
]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_is_denied_unless_allowed(overlay):
    policies = [d for d in _documents(overlay) if d["kind"] == "NetworkPolicy"]
    [deny] = [p for p in policies if p["metadata"]["name"] == "default-deny-all"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize(("source", "destination", "port", "protocol", "in_dev", "in_prod"), FLOWS,
                         ids=[f"{s}->{d}:{p}/{proto}" for s, d, p, proto, *_ in FLOWS])
def test_network_policies(overlay, source, destination, port, protocol, in_dev, in_prod):
    policies = [d for d in _documents(overlay) if d["kind"] == "NetworkPolicy"]
    peers = _peers(overlay)
    expected = in_dev if overlay == "dev" else in_prod
    assert _allowed(policies, peers[source], peers[destination], port, protocol) is expected


# -- schemas -----------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """A CRD schema that refuses what it does not name, like
    ``kubernetes-validate --strict`` (kept open where the CRD says so)."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def _crd_validator(api_version: str, kind: str) -> Any:
    import jsonschema

    schema = _strict(json.loads((SCHEMAS / CRD_SCHEMAS[(api_version, kind)]).read_text()))
    # metadata is the API server's: not described by the CRD
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_overlay_validates_strictly(overlay, version):
    import kubernetes_validate

    errors = []
    for doc in _documents(overlay):
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if (doc["apiVersion"], doc["kind"]) in CRD_SCHEMAS:
            errors += [f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
                       for e in _crd_validator(doc["apiVersion"], doc["kind"]).iter_errors(doc)]
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{where}: {'/'.join(map(str, e.path))}: {e.message}")
    assert not errors, "\n".join(errors)


# -- checkov -----------------------------------------------------------------


def _checkov() -> str:
    for candidate in (os.environ.get("CONNLOG_CHECKOV"), str(ROOT / ".venv" / "checkov" / "bin" / "checkov"),
                      shutil.which("checkov")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("checkov not found: .ci/run installs it into .venv/checkov "
                "(python3 -m venv .venv/checkov && .venv/checkov/bin/pip install -r deploy/checkov-requirements.txt)")


def _checkov_failures(overlay: str, tmp_path: Path) -> list[tuple[str, str]]:
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(_rendered(overlay))
    # offline: no platform key, no downloads, no mapping from the platform
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_", "CKV_", "PRISMA_"))}
    env |= {"BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false", "LOG_LEVEL": "WARNING"}
    result = subprocess.run([_checkov(), "-f", str(path), "--framework", "kubernetes", "--skip-download",
                             "--compact", "-o", "json"], capture_output=True, text=True, timeout=300, env=env,
                            check=False)
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["passed"] > 100, report["summary"]
    failures = []
    for check in report["results"]["failed_checks"]:
        kind, _, rest = check["resource"].partition(".")
        failures.append((check["check_id"], f"{kind}.{rest.split('.', 1)[-1]}"))
    return failures


def _skips() -> list[dict]:
    return yaml.safe_load((DEPLOY / "checkov-skips.yaml").read_text())


def test_every_checkov_skip_has_a_reason():
    for skip in _skips():
        assert set(skip) == {"check", "overlays", "resources", "reason"}, skip
        assert len(skip["reason"].split()) >= 10, skip["check"]
        assert set(skip["overlays"]) <= set(OVERLAYS) and skip["resources"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_finds_nothing_unexplained(overlay, tmp_path):
    skips = [s for s in _skips() if overlay in s["overlays"]]
    failures = _checkov_failures(overlay, tmp_path)
    unexplained = [(check, resource) for check, resource in failures
                   if not any(s["check"] == check and ("*" in s["resources"] or resource in s["resources"])
                              for s in skips)]
    assert not unexplained, unexplained
    unused = [s["check"] for s in skips if not any(check == s["check"] for check, _ in failures)]
    assert not unused, f"skips that match no finding in {overlay} any more: {unused}"
