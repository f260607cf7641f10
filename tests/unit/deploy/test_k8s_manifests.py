"""deploy/k8s: every overlay renders with kustomize and validates against the Kubernetes schemas, and every service
in services/ is deployed with probes, a Service, network policies that follow its configured peers, and a
migrations Job. No cluster needed: kubectl (kustomize) and kubernetes-validate come with the dev dependencies."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate.utils
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "production")
# The oldest Kubernetes the manifests are written for (the preStop sleep action is on by default from 1.30); they are
# validated against it and against the newest version kubernetes-validate knows.
MINIMUM_KUBERNETES = "1.30.0"
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/__main__.py"))


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{path} is missing: install the dev dependencies (pip install -e '.[dev]')"
    return str(path)


@functools.cache
def rendered(overlay: str) -> str:
    result = subprocess.run([_tool("kubectl"), "kustomize", str(K8S / "overlays" / overlay)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"kubectl kustomize overlays/{overlay} failed:\n{result.stderr}"
    return result.stdout


@functools.cache
def resources(overlay: str) -> tuple[dict[str, Any], ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return tuple(doc for doc in yaml.load_all(rendered(overlay), Loader=loader) if doc)


def of_kind(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources(overlay) if r["kind"] == kind}


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions In/NotIn/Exists) matches these labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def pod_labels(overlay: str, service: str) -> dict[str, str]:
    return of_kind(overlay, "Deployment")[service]["spec"]["template"]["metadata"]["labels"]


def test_there_are_services_to_deploy() -> None:
    assert {"gateway", "ingest", "metering", "invoicing", "payments", "notification"} <= set(SERVICES)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_strictly_against_the_kubernetes_schemas(overlay: str, tmp_path: Path) -> None:
    manifest = tmp_path / f"{overlay}.yaml"
    manifest.write_text(rendered(overlay))
    command = [_tool("kubernetes-validate"), "--strict", "--quiet"]
    for version in (MINIMUM_KUBERNETES, kubernetes_validate.utils.latest_version()):
        command += ["-k", version]
    result = subprocess.run([*command, str(manifest)], capture_output=True, text=True, timeout=60)
    # A kind without a schema is only a warning to kubernetes-validate; there are no custom resources here, so
    # it means a misspelt kind or apiVersion.
    problems = [line for line in result.stdout.splitlines() if line.startswith(("ERROR", "WARN", "FATAL"))]
    assert result.returncode == 0 and not problems, (
        f"overlays/{overlay} does not validate:\n" + "\n".join(problems or [result.stdout, result.stderr]))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_its_deployment_probes_service_network_policy_and_migrations(overlay: str) -> None:
    deployments = of_kind(overlay, "Deployment")
    services = of_kind(overlay, "Service").values()
    policies = of_kind(overlay, "NetworkPolicy").values()
    jobs = of_kind(overlay, "Job").values()
    missing: list[str] = []
    for name in SERVICES:
        deployment = deployments.get(name)
        if deployment is None:
            missing.append(f"{name}: no Deployment")
            continue
        pod = deployment["spec"]["template"]
        containers = [c for c in pod["spec"]["containers"] if c.get("args", [None])[0] == f"services.{name}"]
        if not containers:
            missing.append(f"{name}: no container started with args ['services.{name}']")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if not all(c.get(probe) for c in containers):
                missing.append(f"{name}: no {probe}")
        labels = pod["metadata"]["labels"]
        if not any(s["spec"].get("selector") and selects({"matchLabels": s["spec"]["selector"]}, labels)
                   for s in services):
            missing.append(f"{name}: no Service selecting its pods")
        # The deny-all policy selects every pod; a service needs one written for it.
        if not any(p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], labels) for p in policies):
            missing.append(f"{name}: no NetworkPolicy selecting its pods")
        if (ROOT / "services" / name / "migrations").is_dir() and not any(
                c.get("args") == [f"services.{name}", "migrate"]
                for j in jobs for c in j["spec"]["template"]["spec"]["containers"]):
            missing.append(f"{name}: no Job running 'python -m services.{name} migrate'")
    assert not missing, f"overlays/{overlay} is missing:\n" + "\n".join(missing)


def _allows(policies: Any, direction: str, pod: dict[str, str], peer: dict[str, str], port: int) -> bool:
    """Whether some policy selecting ``pod`` allows traffic ``direction`` (ingress: from peer; egress: to peer)."""
    side = "from" if direction == "ingress" else "to"
    for policy in policies:
        spec = policy["spec"]
        if not selects(spec["podSelector"], pod) or direction.capitalize() not in spec.get("policyTypes", []):
            continue
        for rule in spec.get(direction, []):
            ports = [p.get("port") for p in rule.get("ports", [])]
            peers = rule.get(side)
            if (not ports or port in ports) and (
                    peers is None or any("podSelector" in p and "namespaceSelector" not in p
                                         and selects(p["podSelector"], peer) for p in peers)):
                return True
    return False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_exactly_the_configured_peers(overlay: str) -> None:
    """Each ``<peer>_address`` setting of a service is an edge both ends allow; no other service port is open."""
    deployments = of_kind(overlay, "Deployment")
    policies = list(of_kind(overlay, "NetworkPolicy").values())
    config = of_kind(overlay, "ConfigMap")

    def grpc_port(name: str) -> int:
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        return next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")

    wrong: list[str] = []
    for caller in SERVICES:
        settings = __import__(f"services.{caller}.config", fromlist=["*"])
        fields = {f for cls in vars(settings).values() if isinstance(cls, type) and hasattr(cls, "model_fields")
                  for f in cls.model_fields if f.endswith("_address") and f.removesuffix("_address") in SERVICES}
        peers = {f.removesuffix("_address") for f in fields}
        data = config[f"{caller}-config"]["data"]
        for callee in SERVICES:
            if callee == caller:
                continue
            port = grpc_port(callee)
            edge = (_allows(policies, "egress", pod_labels(overlay, caller), pod_labels(overlay, callee), port)
                    and _allows(policies, "ingress", pod_labels(overlay, callee), pod_labels(overlay, caller), port))
            if callee in peers and not edge:
                wrong.append(f"{caller} -> {callee}:{port} is configured but not allowed")
            if callee not in peers and edge:
                wrong.append(f"{caller} -> {callee}:{port} is allowed but {caller} never calls {callee}")
            variable = f"{caller.upper()}_{callee.upper()}_ADDRESS"
            if callee in peers and data.get(variable) != f"{callee}:{port}":
                wrong.append(f"{caller}-config: {variable} should be {callee}:{port}, is {data.get(variable)}")
    assert not wrong, f"overlays/{overlay}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_non_root_on_a_read_only_root_filesystem(overlay: str) -> None:
    loose: list[str] = []
    for r in resources(overlay):
        if r["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        spec = r["spec"]["template"]["spec"]
        where = f"{r['kind']}/{r['metadata']['name']}"
        pod_security = spec.get("securityContext", {})
        seccomp = pod_security.get("seccompProfile", {}).get("type")
        if not pod_security.get("runAsNonRoot") or seccomp != "RuntimeDefault":
            loose.append(f"{where}: pod without runAsNonRoot and the RuntimeDefault seccomp profile")
        for container in spec["containers"]:
            security = container.get("securityContext", {})
            if not (security.get("readOnlyRootFilesystem") and security.get("allowPrivilegeEscalation") is False
                    and security.get("capabilities", {}).get("drop") == ["ALL"]):
                loose.append(f"{where}/{container['name']}: not read-only, or may escalate, or keeps capabilities")
            if not container.get("resources", {}).get("requests") or not container["resources"].get("limits"):
                loose.append(f"{where}/{container['name']}: no resource requests and limits")
    assert not loose, f"overlays/{overlay}:\n" + "\n".join(loose)


def test_dev_runs_postgresql_in_the_cluster_and_production_uses_a_managed_database() -> None:
    assert "postgres" in of_kind("dev", "StatefulSet")
    assert "postgres" not in of_kind("production", "StatefulSet")
    assert "postgres" not in of_kind("production", "Service")
    assert "managed-database-egress" in of_kind("production", "NetworkPolicy")
    assert of_kind("dev", "Namespace").keys() != of_kind("production", "Namespace").keys()
    for overlay in OVERLAYS:
        nats = of_kind(overlay, "StatefulSet")["nats"]
        assert nats["spec"]["replicas"] == 3 and nats["spec"]["volumeClaimTemplates"]
        namespaces = {r["metadata"].get("namespace") for r in resources(overlay) if r["kind"] != "Namespace"}
        assert namespaces == set(of_kind(overlay, "Namespace")), f"{overlay}: resources outside its namespace"


def test_autoscalers_target_gateway_ingest_and_metering() -> None:
    for overlay in OVERLAYS:
        targets = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(overlay, "HorizontalPodAutoscaler").values()}
        assert targets == {"gateway", "ingest", "metering"}


def test_every_service_has_its_own_mesh_token_and_the_dev_verifiers_match_them() -> None:
    """Each Deployment reads <SVC>_MESH_TOKEN from its own Secret; MESH_VERIFIERS (billing-common) holds the
    hash of every one of them, so the services of the dev overlay accept each other (docs/security.md)."""
    import base64

    from billing_runtime import mesh

    for overlay in OVERLAYS:
        common = of_kind(overlay, "ConfigMap")["billing-common"]["data"]
        assert "MESH_VERIFIERS" in common, overlay
        for name in SERVICES:
            container = of_kind(overlay, "Deployment")[name]["spec"]["template"]["spec"]["containers"][0]
            refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container.get("env", []) if "valueFrom" in e
                    and "secretKeyRef" in e["valueFrom"]}
            ref = refs.get(f"{name.upper()}_MESH_TOKEN")
            assert ref is not None and ref["name"].startswith(f"{name}-mesh") and ref["key"] == "mesh-token", name
    verifiers = mesh.parse_verifiers(of_kind("dev", "ConfigMap")["billing-common"]["data"]["MESH_VERIFIERS"])
    secrets_ = of_kind("dev", "Secret")
    for name in SERVICES:
        (secret,) = [s for n, s in secrets_.items() if n.startswith(f"{name}-mesh-")]
        token = base64.b64decode(secret["data"]["mesh-token"]).decode()
        assert verifiers[name] == mesh.verifier(token), name
    assert mesh.OPERATOR in verifiers


def test_the_gateway_and_its_migrations_job_read_the_secrets_key_and_the_dev_one_is_a_key() -> None:
    """Both build the gateway's settings, which need GATEWAY_SECRETS_KEY (docs/security.md, "TOTP secrets at rest"):
    mounted from gateway-secrets like the admin token. The dev overlay's is a key the gateway accepts."""
    import base64

    from services.gateway.config import GatewaySettings

    for overlay in OVERLAYS:
        workloads = [of_kind(overlay, "Deployment")["gateway"], of_kind(overlay, "Job")["gateway-migrate"]]
        for workload in workloads:
            pod = workload["spec"]["template"]["spec"]
            env = {e["name"]: e for e in pod["containers"][0]["env"]}
            assert env["GATEWAY_SECRETS_KEY_FILE"]["value"] == "/etc/billing/secrets/secrets-key", overlay
            assert env["GATEWAY_SECRETS_PREVIOUS_KEYS"]["valueFrom"]["secretKeyRef"]["optional"] is True
            (volume,) = [v for v in pod["volumes"] if v["name"] == "secrets"]
            assert {"key": "secrets-key", "path": "secrets-key"} in volume["secret"]["items"], overlay
    (secret,) = [s for n, s in of_kind("dev", "Secret").items() if n.startswith("gateway-secrets-")]
    key = base64.b64decode(secret["data"]["secrets-key"]).decode()
    settings = GatewaySettings(admin_token="x" * 16, database_url="postgresql://unused/unused", secrets_key=key)
    assert len(settings.secrets_keys()[0]) == 32
