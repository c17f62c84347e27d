"""The Helm chart ``helm/kithost``, rendered by a real helm (``make install`` puts v3.17.2 in
build/helm) with the default values and the value files in ``values/``; every manifest is
validated against the Kubernetes schemas of several minor versions (kubernetes-validate,
strict), and the chart's promises are checked on the rendered objects."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from fastapi.routing import iter_route_contexts

from kithost.app import create_app
from kithost.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "kithost"
HELM = ROOT / "build" / "helm" / "helm"
VALUES = Path(__file__).parent / "values"
VARIANTS = ["default", *sorted(p.stem for p in VALUES.glob("*.yaml"))]
KUBERNETES_VERSIONS = ["1.29.0", "1.33.0", "1.37.0"]
CRDS = {"ServiceMonitor", "PodMonitor"}
"""Kinds of custom resources, which have no schema among Kubernetes' own."""
WORKLOADS = ("Deployment", "Job")
COMPONENT = "app.kubernetes.io/component"

Manifest = dict[str, Any]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HELM), *args], capture_output=True, text=True, timeout=60, check=False
    )


def value_args(variant: str) -> list[str]:
    return [] if variant == "default" else ["-f", str(VALUES / f"{variant}.yaml")]


def render(variant: str, *extra: str) -> list[Manifest]:
    result = helm("template", "rel", str(CHART), "--namespace", "kh", *value_args(variant), *extra)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Manifest]]:
    return {variant: render(variant) for variant in VARIANTS}


def of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[Manifest], kind: str, name: str) -> Manifest:
    [found] = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    return found


def pod_templates(docs: list[Manifest]) -> Iterator[tuple[Manifest, Manifest]]:
    """(workload, pod template) of every Deployment and Job."""
    for doc in docs:
        if doc["kind"] in WORKLOADS:
            yield doc, doc["spec"]["template"]


def containers(docs: list[Manifest]) -> Iterator[tuple[Manifest, Manifest]]:
    for workload, template in pod_templates(docs):
        for container in template["spec"]["containers"]:
            yield workload, container


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """Kubernetes' label selector semantics (matchLabels and In/NotIn/Exists)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value, operator = labels.get(expression["key"]), expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and value is None:
            return False
    return True


def components_selected(docs: list[Manifest], selector: Manifest) -> set[str]:
    return {
        template["metadata"]["labels"][COMPONENT]
        for _, template in pod_templates(docs)
        if selects(selector, template["metadata"]["labels"])
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint_strict(variant: str) -> None:
    result = helm("lint", "--strict", str(CHART), *value_args(variant))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_kubernetes(
    rendered: dict[str, list[Manifest]], version: str
) -> None:
    for variant, docs in rendered.items():
        for doc in docs:
            if doc["kind"] in CRDS:
                continue
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except jsonschema.ValidationError as exc:
                pytest.fail(f"{variant}: {doc['kind']}/{doc['metadata']['name']}: {exc}")


def test_probes_on_every_long_running_container(rendered: dict[str, list[Manifest]]) -> None:
    for docs in rendered.values():
        for workload, container in containers(docs):
            if workload["kind"] != "Deployment":
                continue
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in container, (workload["metadata"]["name"], probe)
    api = named(rendered["default"], "Deployment", "rel-kithost-api")["spec"]["template"]
    [container] = api["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    worker = named(rendered["default"], "Deployment", "rel-kithost-worker")["spec"]["template"]
    [container] = worker["spec"]["containers"]
    assert container["livenessProbe"]["exec"]["command"][:2] == ["kithost", "ping-worker"]


def test_graceful_shutdown_outlasts_a_stream(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["default"]
    config = named(docs, "ConfigMap", "rel-kithost")["data"]
    pod = named(docs, "Deployment", "rel-kithost-api")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pause, graceful = int(command[1]), int(config["KITHOST_GRACEFUL_SHUTDOWN_SECONDS"])
    assert pause > 0
    assert graceful >= 60
    assert pod["terminationGracePeriodSeconds"] > pause + graceful


def test_beat_is_a_singleton(rendered: dict[str, list[Manifest]]) -> None:
    for docs in rendered.values():
        beat = named(docs, "Deployment", "rel-kithost-beat")
        assert beat["spec"]["replicas"] == 1
        assert beat["spec"]["strategy"] == {"type": "Recreate"}
        targets = [
            h["spec"]["scaleTargetRef"]["name"] for h in of_kind(docs, "HorizontalPodAutoscaler")
        ]
        assert "rel-kithost-beat" not in targets


def test_replicas_are_absent_under_the_hpa(rendered: dict[str, list[Manifest]]) -> None:
    scaled = rendered["hpa"]
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]
        for h in of_kind(scaled, "HorizontalPodAutoscaler")
    }
    assert set(hpas) == {"rel-kithost-api", "rel-kithost-worker"}
    assert (hpas["rel-kithost-api"]["minReplicas"], hpas["rel-kithost-api"]["maxReplicas"]) == (
        3,
        12,
    )
    for name in hpas:
        assert "replicas" not in named(scaled, "Deployment", name)["spec"]
        assert named(rendered["default"], "Deployment", name)["spec"]["replicas"] >= 1
    assert of_kind(rendered["default"], "HorizontalPodAutoscaler") == []


def test_disruption_budgets_let_a_drain_end(rendered: dict[str, list[Manifest]]) -> None:
    """Every PodDisruptionBudget allows evicting a pod however few run: with one worker (the
    default), minAvailable 1 let no drain finish."""
    for variant, docs in rendered.items():
        budgets = of_kind(docs, "PodDisruptionBudget")
        assert {b["metadata"]["name"] for b in budgets} == {
            "rel-kithost-api",
            "rel-kithost-worker",
        }
        for budget in budgets:
            name = budget["metadata"]["name"]
            deployment = named(docs, "Deployment", name)
            hpas = [
                h
                for h in of_kind(docs, "HorizontalPodAutoscaler")
                if h["spec"]["scaleTargetRef"]["name"] == name
            ]
            fewest = hpas[0]["spec"]["minReplicas"] if hpas else deployment["spec"]["replicas"]
            spec = budget["spec"]
            if "minAvailable" in spec:
                allowed = fewest - int(spec["minAvailable"])
            else:
                allowed = min(fewest, int(spec["maxUnavailable"]))
            assert allowed >= 1, (variant, name, fewest, spec)


def test_selectors_match_their_own_pods_only(rendered: dict[str, list[Manifest]]) -> None:
    for docs in rendered.values():
        for workload, template in pod_templates(docs):
            if workload["kind"] == "Deployment":
                selector = workload["spec"]["selector"]
                assert selects(selector, template["metadata"]["labels"])
                component = template["metadata"]["labels"][COMPONENT]
                assert components_selected(docs, selector) == {component}
        for pdb in of_kind(docs, "PodDisruptionBudget"):
            assert len(components_selected(docs, pdb["spec"]["selector"])) == 1
        for service in of_kind(docs, "Service"):
            selector = {"matchLabels": service["spec"]["selector"]}
            assert components_selected(docs, selector) == {"api"}


def test_migrations_run_first_and_wait_on_nothing_created_after(
    rendered: dict[str, list[Manifest]],
) -> None:
    for variant, docs in rendered.items():
        hooks = {
            (d["kind"], d["metadata"]["name"]): d["metadata"]["annotations"]
            for d in docs
            if "helm.sh/hook" in d["metadata"].get("annotations", {})
        }
        for key, hook in hooks.items():
            # A retry replaces what a failed run left; a run that succeeded leaves nothing.
            policy = set(hook["helm.sh/hook-delete-policy"].split(","))
            assert {"before-hook-creation", "hook-succeeded"} <= policy, (variant, key)
        job = named(docs, "Job", "rel-kithost-migrations")
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
        assert job["spec"]["activeDeadlineSeconds"] > 0
        pod = job["spec"]["template"]["spec"]
        assert "serviceAccountName" not in pod  # the chart's ServiceAccount comes later
        assert all("persistentVolumeClaim" not in v for v in pod.get("volumes", []))
        [container] = pod["containers"]
        assert container["args"] == ["migrate"]
        for source in container["envFrom"]:
            kind, ref = (
                ("ConfigMap", source["configMapRef"])
                if "configMapRef" in source
                else ("Secret", source["secretRef"])
            )
            if (kind, ref["name"]) == ("Secret", "kithost"):
                continue  # secrets.existingSecret: created by the operator before installing
            hook = hooks[(kind, ref["name"])]
            assert hook["helm.sh/hook"] == annotations["helm.sh/hook"], variant
            assert int(hook["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])


def secret_values() -> list[str]:
    values = yaml.safe_load((VALUES / "chart-secret.yaml").read_text())["secrets"]
    return [v for k, v in values.items() if k != "existingSecret"]


def test_secrets_appear_only_in_secrets(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["chart-secret"]
    [secret] = [
        s
        for s in of_kind(docs, "Secret")
        if "helm.sh/hook" not in s["metadata"].get("annotations", {})
    ]
    assert len(secret["data"]) == len(secret_values()) - 1  # all but the owner's URL
    for doc in docs:
        if doc["kind"] == "Secret":
            continue
        text = yaml.safe_dump(doc)
        for value in secret_values():
            assert value not in text, (doc["kind"], doc["metadata"]["name"])
    for docs in rendered.values():
        for _, container in containers(docs):
            literals = {e["name"] for e in container.get("env", []) if "value" in e}
            assert literals <= {"PROMETHEUS_MULTIPROC_DIR"}, container["name"]
        for config in of_kind(docs, "ConfigMap"):
            assert not {"KITHOST_DATABASE_URL", "KITHOST_SECRET_KEY", "KITHOST_BROKER_URL"} & set(
                config["data"]
            )


def test_only_the_migrations_job_holds_the_tables_owners_url() -> None:
    """The API, worker and beat pods read a Secret without it (row-level security binds
    them because they connect as the app's role); the migrations Job reads its own."""
    owner = "KITHOST_MIGRATION_DATABASE_URL"
    docs = render("chart-secret")
    secrets = {s["metadata"]["name"]: s["data"] for s in of_kind(docs, "Secret")}
    assert owner not in secrets["rel-kithost"]
    assert owner in secrets["rel-kithost-migrations"]
    managed = render("default", "--set", "secrets.existingMigrationSecret=kithost-owner")
    for workload, template in pod_templates(managed):
        names = {
            s["secretRef"]["name"]
            for c in template["spec"]["containers"]
            for s in c.get("envFrom", [])
            if "secretRef" in s
        }
        job = workload["kind"] == "Job"
        assert ("kithost-owner" in names) is job, workload["metadata"]["name"]


def test_checksums_roll_the_pods() -> None:
    def checksums(*extra: str) -> dict[str, str]:
        [api] = [
            d
            for d in render("chart-secret", *extra)
            if d["metadata"]["name"] == "rel-kithost-api" and d["kind"] == "Deployment"
        ]
        annotations: dict[str, str] = api["spec"]["template"]["metadata"]["annotations"]
        return annotations

    before = checksums()
    config = checksums("--set", "config.logLevel=DEBUG")
    secret = checksums("--set", "secrets.secretKey=rotated")
    assert config["checksum/config"] != before["checksum/config"]
    assert config["checksum/secret"] == before["checksum/secret"]
    assert secret["checksum/secret"] != before["checksum/secret"]
    assert secret["checksum/config"] == before["checksum/config"]


def test_restricted_pod_security(rendered: dict[str, list[Manifest]]) -> None:
    for docs in rendered.values():
        for workload, template in pod_templates(docs):
            pod = template["spec"]
            assert pod["automountServiceAccountToken"] is False
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            volumes = {v["name"]: v for v in pod["volumes"]}
            assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}
            for container in pod["containers"]:
                context = container["securityContext"]
                assert context["readOnlyRootFilesystem"] is True
                assert context["allowPrivilegeEscalation"] is False
                assert context["capabilities"] == {"drop": ["ALL"]}
                assert "resources" in container
                assert container["resources"]["requests"]
                mounts = {m["mountPath"] for m in container["volumeMounts"]}
                assert "/tmp" in mounts, workload["metadata"]["name"]  # noqa: S108
            if workload["kind"] == "Deployment":
                [spread] = pod["topologySpreadConstraints"]
                assert spread["topologyKey"] == "kubernetes.io/hostname"
                assert components_selected(docs, spread["labelSelector"]) == {
                    template["metadata"]["labels"][COMPONENT]
                }
        for account in of_kind(docs, "ServiceAccount"):
            assert account["automountServiceAccountToken"] is False


def test_attachments_on_a_shared_volume_or_in_s3(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["default"]
    [claim] = of_kind(docs, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    config = named(docs, "ConfigMap", "rel-kithost")["data"]
    assert config["KITHOST_ATTACHMENT_STORAGE_URL"] == "file:///data/attachments"
    for name in ("rel-kithost-api", "rel-kithost-worker"):
        pod = named(docs, "Deployment", name)["spec"]["template"]["spec"]
        [volume] = [v for v in pod["volumes"] if v["name"] == "attachments"]
        assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        [container] = pod["containers"]
        assert {"name": "attachments", "mountPath": "/data/attachments"} in container[
            "volumeMounts"
        ]

    s3 = rendered["s3"]
    assert of_kind(s3, "PersistentVolumeClaim") == []
    config = named(s3, "ConfigMap", "rel-kithost")["data"]
    assert config["KITHOST_ATTACHMENT_STORAGE_URL"] == "s3://kithost-attachments/prod"
    assert config["KITHOST_S3_ENDPOINT_URL"] == "https://minio.storage.svc:9000"
    for _, template in pod_templates(s3):
        assert all(v["name"] != "attachments" for v in template["spec"]["volumes"])


def test_ingress_tls_and_visitor_host(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["ingress-tls"]
    [ingress] = of_kind(docs, "Ingress")
    assert ingress["spec"]["tls"] == [
        {"secretName": "kithost-tls", "hosts": ["kithost.example.com", "chat.example.net"]}
    ]
    rules = {rule["host"]: rule["http"]["paths"] for rule in ingress["spec"]["rules"]}
    assert [p["path"] for p in rules["kithost.example.com"]] == ["/"]
    assert [(p["path"], p["pathType"]) for p in rules["chat.example.net"]] == [
        ("/embed.js", "Exact"),
        ("/embed/", "Prefix"),
        ("/w/", "Prefix"),
        ("/v1/", "Prefix"),
    ]
    for paths in rules.values():
        assert {p["backend"]["service"]["name"] for p in paths} == {"rel-kithost-api"}
    config = named(docs, "ConfigMap", "rel-kithost")["data"]
    assert config["KITHOST_ALLOWED_HOSTS"] == "kithost.example.com,chat.example.net"
    assert config["KITHOST_VISITOR_URL"] == "https://chat.example.net"
    default_config = named(rendered["default"], "ConfigMap", "rel-kithost")["data"]
    assert "KITHOST_VISITOR_URL" not in default_config
    [default] = of_kind(rendered["default"], "Ingress")
    assert "tls" not in default["spec"]


def ingress_routes(paths: list[Manifest], path: str) -> bool:
    """Whether one of an Ingress rule's ``paths`` takes ``path``, as Kubernetes matches them:
    ``Exact``, the whole path; ``Prefix``, its first elements, whole element by element (``/w/``
    takes ``/w`` and ``/w/x``, never ``/w.x.js``; a trailing ``/`` does not count)."""
    elements = [e for e in path.split("/") if e]
    for rule in paths:
        assert rule["pathType"] in {"Exact", "Prefix"}, rule
        if rule["pathType"] == "Exact" and rule["path"] == path:
            return True
        prefix = [e for e in rule["path"].split("/") if e]
        if rule["pathType"] == "Prefix" and elements[: len(prefix)] == prefix:
            return True
    return False


@pytest.fixture(scope="module")
def app_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bool]:
    """Every path the app serves (each route's, its parameters filled in) and whether a
    visitor's browser fetches it: the app's operations tagged ``embed`` (the loader's scripts,
    the framed page and its script, config, session, events) or ``chat`` (the self-hosted
    ChatKit endpoint, attachments' uploads and previews), as the API document says."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("app"), secret_key="k")
    app = create_app(settings)
    visitor = {
        path
        for path, item in app.openapi()["paths"].items()
        if any({"embed", "chat"} & set(operation.get("tags", ())) for operation in item.values())
    }
    return {
        re.sub(r"{\w+(:path)?}", "x", route.path): route.path in visitor
        for route in iter_route_contexts(app.routes)
        if route.path is not None
    }


def test_the_visitor_host_routes_what_visitors_fetch_and_nothing_else(
    rendered: dict[str, list[Manifest]], app_paths: dict[str, bool]
) -> None:
    """Every URL the app serves visitors' browsers (``/embed/{pk}.js``, the hashed scripts, the
    framed page, the visitor routes, ChatKit's) reaches it on the visitor host, and nothing
    else does (the dashboard, the API, the probes); the API host routes everything."""
    [ingress] = of_kind(rendered["ingress-tls"], "Ingress")
    rules = {rule["host"]: rule["http"]["paths"] for rule in ingress["spec"]["rules"]}
    assert "/embed/x.js" in app_paths
    assert "/v1/chatkit/x" in app_paths
    for path, visitor in app_paths.items():
        assert ingress_routes(rules["chat.example.net"], path) == visitor, path
        assert ingress_routes(rules["kithost.example.com"], path), path


def test_the_ingress_never_publishes_the_probes(rendered: dict[str, list[Manifest]]) -> None:
    """The kubelet calls the API's probes at the pod's address (no host, no Host header).
    Every host the Ingress routes is an allowed host name, under which the app answers 404 at
    /healthz and /readyz (tests/kit/test_edge.py); the visitor host does not route them."""
    for variant, docs in rendered.items():
        api = named(docs, "Deployment", "rel-kithost-api")["spec"]["template"]["spec"]
        [container] = api["containers"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = container[probe]["httpGet"]
            assert get["path"] in {"/healthz", "/readyz"}
            assert "host" not in get, (variant, probe)
            assert all(h["name"].lower() != "host" for h in get.get("httpHeaders", []))
        allowed = named(docs, "ConfigMap", "rel-kithost")["data"]["KITHOST_ALLOWED_HOSTS"]
        for ingress in of_kind(docs, "Ingress"):
            for rule in ingress["spec"]["rules"]:
                assert rule["host"] in allowed.split(","), variant
                for path in rule["http"]["paths"]:
                    assert path["path"] not in {"/healthz", "/readyz"}


def test_network_policies_select_the_right_pods(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["networkpolicy"]
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(docs, "NetworkPolicy")}
    api = policies["rel-kithost-api"]
    assert components_selected(docs, api["podSelector"]) == {"api"}
    rule, _metrics = api["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert rule["from"][0]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}
    }
    worker = policies["rel-kithost-worker"]
    assert components_selected(docs, worker["podSelector"]) == {"worker"}
    [rule] = worker["ingress"]
    assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    closed = policies["rel-kithost-no-ingress"]
    assert components_selected(docs, closed["podSelector"]) == {"beat", "migrations"}
    assert "ingress" not in closed
    assert closed["policyTypes"] == ["Ingress"]

    egress = policies["rel-kithost-egress"]
    assert components_selected(docs, egress["podSelector"]) == {
        "api",
        "worker",
        "beat",
        "migrations",
    }
    allowed = {
        (block["ipBlock"]["cidr"] if "ipBlock" in block else "dns", port["port"])
        for rule in egress["egress"]
        for block in rule["to"]
        for port in rule["ports"]
    }
    assert allowed == {
        ("dns", 53),
        ("10.20.0.0/24", 5432),
        ("10.21.0.0/24", 6379),
        ("10.21.0.0/24", 5672),
        ("162.159.140.0/24", 443),
        ("172.66.0.0/24", 443),
        ("10.30.0.5/32", 587),
    }
    assert of_kind(rendered["default"], "NetworkPolicy") == []


def egress_allows(docs: list[Manifest], component: str, address: str, port: int) -> bool:
    """Whether the NetworkPolicies let ``component``'s pods open a TCP connection to
    ``address``:``port`` (ipBlock peers only; Kubernetes' union of every policy selecting it)."""
    [labels] = {
        frozenset(t["metadata"]["labels"].items())
        for _, t in pod_templates(docs)
        if t["metadata"]["labels"][COMPONENT] == component
    }
    target = ipaddress.ip_address(address)
    for policy in of_kind(docs, "NetworkPolicy"):
        spec = policy["spec"]
        if "Egress" not in spec["policyTypes"] or not selects(spec["podSelector"], dict(labels)):
            continue
        for rule in spec.get("egress", []):
            ports = rule.get("ports", [])
            if ports and not any(
                p.get("protocol", "TCP") == "TCP" and p.get("port", port) == port for p in ports
            ):
                continue
            for peer in rule["to"]:
                block = peer.get("ipBlock")
                if (
                    block
                    and target in ipaddress.ip_network(block["cidr"])
                    and not any(target in ipaddress.ip_network(e) for e in block.get("except", []))
                ):
                    return True
    return False


PUBLIC = ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "1.1.1.1"]
"""Addresses a tenant's webhook, MCP server or agent's base_url may have."""
INTERNAL = [
    "10.96.0.1",  # a Service
    "10.244.3.7",  # a pod
    "172.20.0.10",
    "192.168.1.1",
    "100.100.100.200",  # Alibaba's metadata service (shared address space)
    "169.254.169.254",  # the cloud's metadata service
    "127.0.0.1",
    "fd00:ec2::254",  # AWS's metadata service over IPv6
    "fe80::1",
    "::1",
]


def test_tenants_urls_reach_public_addresses_only(rendered: dict[str, list[Manifest]]) -> None:
    """Webhooks (workers), MCP servers, `http` tools and an agent's base_url (API) name any
    public address and port: the NetworkPolicies let the API and the workers reach them, and
    nothing of the cluster's network beyond the database, the broker and extraEgress."""
    docs = rendered["networkpolicy"]
    for component in ("api", "worker"):
        for address in PUBLIC:
            for port in (443, 80, 8443):
                assert egress_allows(docs, component, address, port), (component, address, port)
        for address in INTERNAL:
            for port in (443, 80, 5432, 6379):
                assert not egress_allows(docs, component, address, port), (component, address)
        assert egress_allows(docs, component, "10.20.0.9", 5432)  # the database
        assert not egress_allows(docs, component, "10.20.0.9", 443)
        assert egress_allows(docs, component, "10.30.0.5", 587)  # extraEgress
    for component in ("beat", "migrations"):
        assert not egress_allows(docs, component, PUBLIC[0], 443), component
        assert egress_allows(docs, component, "162.159.140.7", 443), component  # modelCIDRs

    narrowed = render(
        "networkpolicy",
        "--set",
        "networkPolicy.tenantEgress.ports={443}",
        "--set",
        "networkPolicy.tenantEgress.except={10.0.0.0/8,172.16.0.0/12,100.64.0.0/10,fc00::/7}",
    )
    assert egress_allows(narrowed, "api", PUBLIC[1], 443)
    assert not egress_allows(narrowed, "api", PUBLIC[0], 80)
    assert not egress_allows(narrowed, "worker", "172.20.0.10", 443)
    assert not egress_allows(narrowed, "worker", "fd00:ec2::254", 443)
    closed = render("networkpolicy", "--set", "networkPolicy.tenantEgress.enabled=false")
    assert not egress_allows(closed, "api", PUBLIC[0], 443)
    names = {p["metadata"]["name"] for p in of_kind(closed, "NetworkPolicy")}
    assert "rel-kithost-tenant-egress" not in names


def test_prometheus_scrapes_a_port_the_ingress_never_routes(
    rendered: dict[str, list[Manifest]],
) -> None:
    """/metrics is served on a port of its own (KITHOST_METRICS_PORT), which no Service and
    so no Ingress reaches; the API's public port answers 404 there."""
    docs = rendered["networkpolicy"]
    config = named(docs, "ConfigMap", "rel-kithost")["data"]
    monitors = {m["metadata"]["name"]: m for m in of_kind(docs, "PodMonitor")}
    assert set(monitors) == {"rel-kithost-api", "rel-kithost-worker"}
    assert of_kind(docs, "ServiceMonitor") == []
    for component in ("api", "worker"):
        monitor = monitors[f"rel-kithost-{component}"]
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "prometheus"
        assert components_selected(docs, monitor["spec"]["selector"]) == {component}
        [endpoint] = monitor["spec"]["podMetricsEndpoints"]
        assert endpoint == {"port": "metrics", "path": "/metrics", "interval": "30s"}
        pod = named(docs, "Deployment", f"rel-kithost-{component}")["spec"]["template"]["spec"]
        [container] = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == 9808
        [directory] = [
            e["value"] for e in container["env"] if e["name"] == "PROMETHEUS_MULTIPROC_DIR"
        ]
        assert {"name": "metrics", "mountPath": directory} in container["volumeMounts"]
    assert config["KITHOST_METRICS_PORT"] == "9808"
    api = named(docs, "Deployment", "rel-kithost-api")["spec"]["template"]["spec"]
    [container] = api["containers"]
    assert container["args"][0] == "serve"
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "http": 8000,
        "metrics": 9808,
    }
    # The Service, hence the Ingress (and a LoadBalancer Service), reach the app's port only.
    for variant_docs in rendered.values():
        for service in of_kind(variant_docs, "Service"):
            assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
        for ingress in of_kind(variant_docs, "Ingress"):
            for rule in ingress["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    assert path["backend"]["service"]["port"] == {"number": 80}
    # Prometheus's namespace may reach the metrics port, the ingress controller the app's.
    policy = named(docs, "NetworkPolicy", "rel-kithost-api")["spec"]
    by_port = {rule["ports"][0]["port"]: rule["from"] for rule in policy["ingress"]}
    assert set(by_port) == {"http", "metrics"}
    assert by_port["metrics"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert all("monitoring" not in str(source) for source in by_port["http"])
    assert of_kind(rendered["default"], "PodMonitor") == []


def test_extra_env_adds_settings_the_chart_leaves_alone() -> None:
    docs = render("default", "--set", "config.extraEnv.KITHOST_OIDC_CLIENT_ID=kithost")
    config = named(docs, "ConfigMap", "rel-kithost")["data"]
    assert config["KITHOST_OIDC_CLIENT_ID"] == "kithost"
    assert config["KITHOST_ENV"] == "production"


def notes(tmp_path: Path, *extra: str) -> str:
    """NOTES.txt as ``helm install`` prints it (``helm template`` leaves it out): rendered
    from a copy of the chart where it is a manifest's block scalar."""
    copy = tmp_path / "kithost"
    shutil.copytree(CHART, copy)
    source = copy / "templates" / "NOTES.txt"
    body = "".join(f"  {line}\n" for line in source.read_text().splitlines())
    source.unlink()
    (copy / "templates" / "notes.yaml").write_text(f"notes: |\n{body}")
    result = helm("template", "rel", str(copy), "--show-only", "templates/notes.yaml", *extra)
    assert result.returncode == 0, result.stderr
    text: str = yaml.safe_load(result.stdout)["notes"]
    return text


def test_notes_say_what_was_done_and_what_is_left(tmp_path: Path) -> None:
    default = notes(tmp_path / "default")
    assert "migrated by the rel-kithost-migrations Job" in default
    assert "WARNING: config.trustedProxies is empty" in default
    off = notes(
        tmp_path / "off",
        "--set",
        "migrations.enabled=false",
        "--set",
        "config.trustedProxies=10.42.7.0/24",
    )
    assert "migrated by" not in off
    assert "Migrations are off (migrations.enabled=false): run `kithost migrate`" in off
    assert "WARNING" not in off


def test_no_proxy_is_trusted_unless_named(rendered: dict[str, list[Manifest]]) -> None:
    """Trusting a broad range lets any pod in it name its own client address (and dodge the
    per-address sign-in throttle): nothing is trusted by default, every address never."""
    config = named(rendered["default"], "ConfigMap", "rel-kithost")["data"]
    assert config["KITHOST_TRUSTED_PROXIES"] == ""
    named_proxies = render("default", "--set", "config.trustedProxies=10.42.7.0/24")
    config = named(named_proxies, "ConfigMap", "rel-kithost")["data"]
    assert config["KITHOST_TRUSTED_PROXIES"] == "10.42.7.0/24"
    for everyone in ("0.0.0.0/0", "::/0", "10.42.7.0/24\\, 0.0.0.0/0"):
        result = helm("template", "rel", str(CHART), "--set", f"config.trustedProxies={everyone}")
        assert result.returncode != 0, everyone
        assert "config.trustedProxies must not trust every address" in result.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["api.replicas=-1"], "api.replicas: Must be greater than or equal to 0"),
        (["api.replica=2"], "Additional property replica is not allowed"),
        (["attachments.storage=gcs"], "attachments.storage: attachments.storage must be one of"),
        (
            ["secrets.existingSecret="],
            "secrets.databaseUrl is required (or set secrets.existingSecret)",
        ),
        (
            ["attachments.storage=s3"],
            "attachments.s3.bucket is required when attachments.storage is s3",
        ),
        (["ingress.tls.enabled=true"], "ingress.tls.secretName is required"),
        (
            ["config.extraEnv.KITHOST_ENV=development"],
            "config.extraEnv.KITHOST_ENV is set by the chart: use its value instead",
        ),
        (
            ["config.extraEnv.KITHOST_TRUSTED_PROXIES=10.0.0.0/8"],
            "config.extraEnv.KITHOST_TRUSTED_PROXIES is set by the chart",
        ),
        (
            ["config.extraEnv.KITHOST_SECRET_KEY=plaintext"],
            "config.extraEnv.KITHOST_SECRET_KEY is a secret: put it in the Secret",
        ),
        (["config.allowedHosts=*"], "config.allowedHosts must not be * with the Ingress on"),
        (
            ["config.allowedHosts=kithost.example.com\\, *"],
            "config.allowedHosts must not be * with the Ingress on",
        ),
        (["publicUrl=http://kithost.example.com"], "publicUrl must be an https:// URL"),
        (
            ["publicUrl=https://chat.example.com"],
            "publicUrl's host (chat.example.com) must be ingress.host (kithost.example.com)",
        ),
        (["api.terminationGracePeriodSeconds=30"], "api.terminationGracePeriodSeconds must exceed"),
        (
            ["worker.autoscaling.enabled=true", "worker.autoscaling.minReplicas=9"],
            "worker.autoscaling.minReplicas must not exceed worker.autoscaling.maxReplicas",
        ),
    ],
)
def test_invalid_values_fail_the_render_clearly(values: list[str], message: str) -> None:
    sets = [arg for value in values for arg in ("--set", value)]
    result = helm("template", "rel", str(CHART), *sets)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
