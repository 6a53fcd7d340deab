"""deploy/helm/integr8scode, rendered with `helm template` (no cluster): the security properties
the chart promises. Needs the helm binary `bash deploy/helm/check.sh helm` builds (or `HELM`)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "integr8scode"
PRODUCTION_VALUES = ROOT / "deploy" / "helm" / "values-production.yaml"
HELM_VERSION = "v4.3.2"
RELEASE = "t"
TMP = "/tmp"  # noqa: S108 - the mount path checked, not a file this test writes

Doc = dict[str, Any]

# component -> (OTel service.name, env prefix, default port)
SERVICES: dict[str, tuple[str, str, int]] = {
    "api": ("integr8scode-backend", "API", 8000),
    "coordinator": ("execution-coordinator", "COORDINATOR", 8001),
    "dlq-processor": ("dlq-processor", "DLQ", 8002),
    "event-replay": ("event-replay", "REPLAY", 8003),
    "notifier": ("notifier", "NOTIFIER", 8004),
}

# Distinctive values, so a leak anywhere in the rendered output is found by a substring search.
JWT = "jwt-secret-under-test-0123456789abcdefXYZ"
ADMIN_PASSWORD = "admin-password-under-test-42"
MONGO_URL = "mongodb://mongo-user:mongo-pass-under-test@mongo.internal:27017/?tls=true"
REDIS_URL = "rediss://:redis-pass-under-test@redis.internal:6380/0"
# One id:key pair (--set splits on commas; the key without its base64 padding, which is optional).
SEALING_KEYS = "k-under-test:c2VhbGluZy1rZXktdW5kZXItdGVzdC0wMTIzNDU2Nzg"
SECRET_SET = [
    f"secrets.jwtSecret={JWT}",
    f"secrets.adminPassword={ADMIN_PASSWORD}",
    f"secrets.sealingKeys={SEALING_KEYS}",
    f"mongo.url={MONGO_URL}",
    f"redis.url={REDIS_URL}",
]


def _helm_path() -> Path:
    if env := os.environ.get("HELM"):
        return Path(env)
    cache = Path(os.environ.get("INTEGR8SCODE_CACHE", Path.home() / ".cache" / "integr8scode"))
    return cache / "bin" / f"helm-{HELM_VERSION}"


@pytest.fixture(scope="module")
def helm() -> Path:
    path = _helm_path()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"helm not found at {path}: build it with `bash deploy/helm/check.sh helm` "
            "(or point HELM at a helm v4 binary)"
        )
    return path


def _template(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), "template", RELEASE, str(CHART), "--namespace", "ns", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _set(values: list[str]) -> list[str]:
    return [arg for value in values for arg in ("--set", value)]


def render(helm: Path, *args: str) -> list[Doc]:
    result = _template(helm, *args)
    assert result.returncode == 0, f"helm template {' '.join(args)} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def default_docs(helm: Path) -> list[Doc]:
    return render(helm, *_set(SECRET_SET))


@pytest.fixture(scope="module")
def production_docs(helm: Path) -> list[Doc]:
    return render(helm, "-f", str(PRODUCTION_VALUES))


@pytest.fixture(scope="module")
def observability_docs(helm: Path) -> list[Doc]:
    return render(helm, *_set([*SECRET_SET, "otelCollector.enabled=true", "jaeger.enabled=true"]))


@pytest.fixture(scope="module", params=["default", "production", "observability"])
def any_docs(request: pytest.FixtureRequest) -> list[Doc]:
    docs: list[Doc] = request.getfixturevalue(f"{request.param}_docs")
    return docs


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def component(doc: Doc) -> str:
    labels: dict[str, str] = doc["metadata"]["labels"]
    return labels["app.kubernetes.io/component"]


def service_deployments(docs: list[Doc]) -> dict[str, Doc]:
    return {component(d): d for d in of_kind(docs, "Deployment") if component(d) in SERVICES}


def containers(deployment: Doc) -> Iterator[tuple[Doc, Doc]]:
    """(pod spec, container) for every container and init container."""
    spec: Doc = deployment["spec"]["template"]["spec"]
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        yield spec, container


def effective(pod: Doc, container: Doc, key: str) -> Any:
    """A security setting as the kubelet applies it: the container's, else the pod's."""
    own = container.get("securityContext", {})
    if key in own:
        return own[key]
    return pod.get("securityContext", {}).get(key)


def config_data(docs: list[Doc], name: str) -> dict[str, str]:
    for doc in of_kind(docs, "ConfigMap"):
        if doc["metadata"]["name"] == name:
            data: dict[str, str] = doc["data"]
            return data
    raise AssertionError(f"no ConfigMap {name}")


def test_every_container_is_non_root_unprivileged_and_read_only(any_docs: list[Doc]) -> None:
    deployments = of_kind(any_docs, "Deployment")
    assert deployments
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        for pod, container in containers(deployment):
            where = f"{name}/{container['name']}"
            assert effective(pod, container, "runAsNonRoot") is True, where
            assert effective(pod, container, "runAsUser") not in (None, 0), where
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where
            assert container["securityContext"].get("privileged", False) is False, where
            assert "ALL" in container["securityContext"]["capabilities"]["drop"], where
            assert not container["securityContext"]["capabilities"].get("add"), where
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, where
            volumes = {v["name"]: v for v in pod["volumes"]}
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == TMP]
            assert len(tmp) == 1, f"{where}: /tmp must be writable on a read-only root"
            assert "emptyDir" in volumes[tmp[0]["name"]], where


# The least privilege the coordinator's bubblewrap sandboxes need inside a container
# (SANDBOX-PRIVILEGES in values.yaml): exactly this container security context, in a pod user
# namespace; every other container keeps the global one.
COORDINATOR_SECCOMP = {
    "type": "Localhost",
    "localhostProfile": "integr8scode/seccomp-coordinator.json",
}
COORDINATOR_CONTEXT: Doc = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "procMount": "Unmasked",
    "seccompProfile": COORDINATOR_SECCOMP,
    "appArmorProfile": {"type": "Unconfined"},
}


def test_the_coordinator_gets_exactly_the_sandbox_privileges(any_docs: list[Doc]) -> None:
    spec = service_deployments(any_docs)["coordinator"]["spec"]["template"]["spec"]
    assert spec["hostUsers"] is False
    (container,) = spec["containers"]
    assert container["securityContext"] == COORDINATOR_CONTEXT
    assert "seccompProfile" not in spec["securityContext"]
    assert "appArmorProfile" not in spec["securityContext"]
    assert spec["securityContext"]["runAsUser"] == 10001


def test_every_other_container_keeps_runtime_default_seccomp_and_a_masked_proc(
    any_docs: list[Doc],
) -> None:
    for deployment in of_kind(any_docs, "Deployment"):
        if component(deployment) == "coordinator":
            continue
        name = deployment["metadata"]["name"]
        for pod, container in containers(deployment):
            assert effective(pod, container, "seccompProfile") == {"type": "RuntimeDefault"}, name
            assert container["securityContext"].get("procMount", "Default") == "Default", name
            assert effective(pod, container, "appArmorProfile") is None, name
        assert "hostUsers" not in deployment["spec"]["template"]["spec"], name


def test_the_localhost_seccomp_profile_is_the_repos(default_docs: list[Doc]) -> None:
    # What the operator copies to /var/lib/kubelet/seccomp/<localhostProfile> on each node.
    spec = service_deployments(default_docs)["coordinator"]["spec"]["template"]["spec"]
    profile = spec["containers"][0]["securityContext"]["seccompProfile"]["localhostProfile"]
    shipped = ROOT / "deploy" / "containers" / Path(profile).name
    assert shipped.is_file(), f"{profile} names no profile under deploy/containers"
    loaded = json.loads(shipped.read_text())
    assert loaded["defaultAction"] == "SCMP_ACT_ALLOW"
    denied = {
        name
        for rule in loaded["syscalls"]
        if rule.get("action") != "SCMP_ACT_ALLOW"
        for name in rule["names"]
    }
    # What bubblewrap needs stays allowed; what no sandbox needs is refused.
    assert not {"unshare", "clone", "clone3", "mount", "umount2", "pivot_root"} & denied
    assert {"init_module", "ptrace", "bpf", "io_uring_setup", "fsopen"} <= denied


@pytest.mark.parametrize("profile", ["Unconfined", "RuntimeDefault"])
def test_the_coordinators_seccomp_profile_can_be_switched(helm: Path, profile: str) -> None:
    docs = render(helm, *_set([*SECRET_SET, f"coordinator.sandboxSeccomp.type={profile}"]))
    spec = service_deployments(docs)["coordinator"]["spec"]["template"]["spec"]
    context = spec["containers"][0]["securityContext"]
    assert context == {**COORDINATOR_CONTEXT, "seccompProfile": {"type": profile}}
    api = service_deployments(docs)["api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_the_coordinators_seccomp_profile_has_one_source(helm: Path) -> None:
    both = _template(
        helm, *_set([*SECRET_SET, "coordinator.securityContext.seccompProfile.type=Unconfined"])
    )
    assert both.returncode != 0
    assert "coordinator.sandboxSeccomp" in both.stderr
    unknown = _template(helm, *_set([*SECRET_SET, "coordinator.sandboxSeccomp.type=Privileged"]))
    assert unknown.returncode != 0
    no_file = _template(helm, *_set([*SECRET_SET, "coordinator.sandboxSeccomp.localhostProfile="]))
    assert no_file.returncode != 0
    assert "localhostProfile" in no_file.stderr


def test_the_coordinators_security_context_comes_from_its_values(helm: Path) -> None:
    docs = render(
        helm,
        *_set(
            [
                *SECRET_SET,
                "coordinator.hostUsers=true",
                "coordinator.securityContext.procMount=null",
            ]
        ),
        "--set-string",
        "coordinator.podSecurityContext.seccompProfile.type=RuntimeDefault",
    )
    deployment = service_deployments(docs)["coordinator"]
    spec = deployment["spec"]["template"]["spec"]
    assert spec["hostUsers"] is True
    assert "procMount" not in spec["containers"][0]["securityContext"]
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # The other services keep the global context.
    api = service_deployments(docs)["api"]["spec"]["template"]["spec"]["containers"][0]
    assert "procMount" not in api["securityContext"]


def test_the_notes_name_the_node_seccomp_profile(helm: Path) -> None:
    result = subprocess.run(
        [str(helm), "install", RELEASE, str(CHART), "--dry-run=client", *_set(SECRET_SET)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "/var/lib/kubelet/seccomp/integr8scode/seccomp-coordinator.json" in result.stdout


def test_every_service_has_startup_liveness_and_readiness_probes_on_its_port(
    any_docs: list[Doc],
) -> None:
    deployments = service_deployments(any_docs)
    assert set(deployments) == set(SERVICES)
    for name, deployment in deployments.items():
        _, prefix, port = SERVICES[name]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        config = config_data(any_docs, deployment["metadata"]["name"])
        assert config[f"{prefix}_PORT"] == str(port), name
        assert config[f"{prefix}_HOST"] == "0.0.0.0", name
        expected = {
            "startupProbe": "/health/live",
            "livenessProbe": "/health/live",
            "readinessProbe": "/health/ready",
        }
        for probe, path in expected.items():
            get = container[probe]["httpGet"]
            assert get["path"] == path, f"{name} {probe}"
            resolved = ports.get(get["port"], get["port"])
            assert resolved == port, f"{name} {probe} on port {get['port']}"


def test_a_changed_port_moves_the_probes_and_the_setting(helm: Path) -> None:
    docs = render(helm, *_set([*SECRET_SET, "notifier.port=9104"]))
    deployment = service_deployments(docs)["notifier"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": 9104, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"]["port"] == "http"
    assert config_data(docs, deployment["metadata"]["name"])["NOTIFIER_PORT"] == "9104"


def test_only_the_api_and_the_coordinator_autoscale(any_docs: list[Doc]) -> None:
    hpas = of_kind(any_docs, "HorizontalPodAutoscaler")
    assert {hpa["apiVersion"] for hpa in hpas} == {"autoscaling/v2"}
    deployments = service_deployments(any_docs)
    targets = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in hpas}
    assert targets == {
        deployments["api"]["metadata"]["name"],
        deployments["coordinator"]["metadata"]["name"],
    }
    for name in ("api", "coordinator"):
        # The HPA owns the replica count: a fixed one would fight it on every upgrade.
        assert "replicas" not in deployments[name]["spec"], name


def test_a_default_deny_network_policy_covers_every_pod(any_docs: list[Doc]) -> None:
    policies = of_kind(any_docs, "NetworkPolicy")
    deny = [
        p
        for p in policies
        if set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        and "app.kubernetes.io/component" not in p["spec"]["podSelector"].get("matchLabels", {})
    ]
    assert len(deny) == 1, "expected one default-deny policy for the release's pods"
    selector: dict[str, str] = deny[0]["spec"]["podSelector"]["matchLabels"]
    assert selector.get("app.kubernetes.io/instance") == RELEASE
    for deployment in of_kind(any_docs, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), deployment["metadata"]["name"]


def test_the_notifier_reaches_the_internet_but_not_private_ranges(default_docs: list[Doc]) -> None:
    (policy,) = [
        p
        for p in of_kind(default_docs, "NetworkPolicy")
        if p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == "notifier"
    ]
    blocks = [
        peer["ipBlock"]
        for rule in policy["spec"]["egress"]
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    ]
    world = {b["cidr"]: set(b.get("except", [])) for b in blocks}
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= world["0.0.0.0/0"]
    assert "fc00::/7" in world["::/0"]
    assert policy["spec"]["ingress"] == []


def test_admin_apis_only_accept_selected_clients(default_docs: list[Doc]) -> None:
    for name in ("dlq-processor", "event-replay"):
        (policy,) = [
            p
            for p in of_kind(default_docs, "NetworkPolicy")
            if p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == name
        ]
        for rule in policy["spec"]["ingress"]:
            assert rule.get("from"), f"{name}: an ingress rule without `from` admits anyone"


def test_rendering_without_a_jwt_secret_fails(helm: Path) -> None:
    result = _template(helm)
    assert result.returncode != 0
    assert "secrets.jwtSecret" in result.stderr
    short = _template(helm, *_set(["secrets.jwtSecret=short", "secrets.adminPassword=long-enough"]))
    assert short.returncode != 0
    assert "at least 32 characters" in short.stderr
    disabled = _template(helm, *_set(["secrets.create=false"]))
    assert disabled.returncode != 0
    assert "secrets.existingSecret" in disabled.stderr


def test_rendering_without_a_sealing_key_ring_fails_outside_local(helm: Path) -> None:
    without = [v for v in SECRET_SET if not v.startswith("secrets.sealingKeys=")]
    result = _template(helm, *_set(without))
    assert result.returncode != 0
    assert "secrets.sealingKeys is required in environment" in result.stderr
    local = render(helm, *_set([*without, "global.deploymentEnvironment=local"]))
    for deployment in service_deployments(local).values():
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        assert "INTEGR8SCODE_SECRETS_KEYS" not in {e["name"] for e in env}


def test_the_api_and_the_notifier_read_one_key_ring(default_docs: list[Doc]) -> None:
    (secret,) = of_kind(default_docs, "Secret")
    refs = set()
    for name in ("api", "notifier"):
        env = service_deployments(default_docs)[name]["spec"]["template"]["spec"]["containers"][0]
        (ring,) = [e for e in env["env"] if e["name"] == "INTEGR8SCODE_SECRETS_KEYS"]
        ref = ring["valueFrom"]["secretKeyRef"]
        refs.add((ref["name"], ref["key"]))
    assert refs == {(secret["metadata"]["name"], "INTEGR8SCODE_SECRETS_KEYS")}
    assert secret["stringData"]["INTEGR8SCODE_SECRETS_KEYS"] == SEALING_KEYS


def test_an_existing_secret_replaces_the_charts_own(production_docs: list[Doc]) -> None:
    assert of_kind(production_docs, "Secret") == []
    deployment = service_deployments(production_docs)["api"]
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    for var in (
        "API_JWT_SECRET",
        "API_ADMIN_PASSWORD",
        "INTEGR8SCODE_SECRETS_KEYS",
        "MONGO_URL",
        "REDIS_URL",
    ):
        assert env[var]["valueFrom"]["secretKeyRef"] == {"name": "integr8scode-secrets", "key": var}
    notifier = service_deployments(production_docs)["notifier"]
    env = {e["name"]: e for e in notifier["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["INTEGR8SCODE_SECRETS_KEYS"]["valueFrom"]["secretKeyRef"] == {
        "name": "integr8scode-secrets",
        "key": "INTEGR8SCODE_SECRETS_KEYS",
    }


def test_secret_values_appear_only_in_the_secret(default_docs: list[Doc]) -> None:
    secrets = of_kind(default_docs, "Secret")
    assert len(secrets) == 1
    stored = secrets[0]["stringData"]
    assert set(stored.values()) == {JWT, ADMIN_PASSWORD, SEALING_KEYS, MONGO_URL, REDIS_URL}
    for doc in default_docs:
        if doc["kind"] == "Secret":
            continue
        text = yaml.safe_dump(doc)
        for value in (
            JWT,
            ADMIN_PASSWORD,
            SEALING_KEYS.split(":")[1],
            "mongo-pass-under-test",
            "redis-pass-under-test",
        ):
            assert value not in text, f"{doc['kind']} {doc['metadata']['name']} holds a secret"
    for configmap in of_kind(default_docs, "ConfigMap"):
        keys = set(configmap.get("data", {}))
        assert not keys & {
            "API_JWT_SECRET",
            "API_ADMIN_PASSWORD",
            "INTEGR8SCODE_SECRETS_KEYS",
            "MONGO_URL",
            "REDIS_URL",
        }


def test_services_get_secrets_they_need_and_no_more(default_docs: list[Doc]) -> None:
    wanted = {
        "api": {
            "API_JWT_SECRET",
            "API_ADMIN_PASSWORD",
            "INTEGR8SCODE_SECRETS_KEYS",
            "MONGO_URL",
            "REDIS_URL",
        },
        "coordinator": {"MONGO_URL"},
        "dlq-processor": {"API_JWT_SECRET", "MONGO_URL"},
        "event-replay": {"API_JWT_SECRET", "MONGO_URL"},
        "notifier": {"INTEGR8SCODE_SECRETS_KEYS", "MONGO_URL"},
    }
    for name, deployment in service_deployments(default_docs).items():
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        from_secrets = {e["name"] for e in env if "secretKeyRef" in e.get("valueFrom", {})}
        assert from_secrets == wanted[name], name


def test_each_service_gets_its_otel_service_name(any_docs: list[Doc]) -> None:
    for name, deployment in service_deployments(any_docs).items():
        config = config_data(any_docs, deployment["metadata"]["name"])
        assert config["OTEL_SERVICE_NAME"] == SERVICES[name][0], name
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        refs = [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e]
        assert deployment["metadata"]["name"] in refs, name


def test_the_in_chart_collector_receives_the_services_telemetry(
    observability_docs: list[Doc],
) -> None:
    collector = next(
        d for d in of_kind(observability_docs, "Service") if component(d) == "otel-collector"
    )
    endpoint = f"http://{collector['metadata']['name']}:4317"
    for deployment in service_deployments(observability_docs).values():
        config = config_data(observability_docs, deployment["metadata"]["name"])
        assert config["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoint


def _api_policy(docs: list[Doc]) -> Doc:
    (policy,) = [
        p
        for p in of_kind(docs, "NetworkPolicy")
        if p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == "api"
    ]
    return policy


def test_the_api_reads_timelines_from_the_in_chart_jaeger(observability_docs: list[Doc]) -> None:
    jaeger = next(d for d in of_kind(observability_docs, "Service") if component(d) == "jaeger")
    api = service_deployments(observability_docs)["api"]
    config = config_data(observability_docs, api["metadata"]["name"])
    assert config["API_TIMELINE_JAEGER_QUERY_URL"] == f"http://{jaeger['metadata']['name']}:16686"
    [rule] = [
        r
        for r in _api_policy(observability_docs)["spec"]["egress"]
        if {"port": 16686, "protocol": "TCP"} in r["ports"]
    ]
    [peer] = rule["to"]
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "jaeger"


def test_the_timeline_urls_are_settings_of_their_own(helm: Path) -> None:
    docs = render(
        helm,
        *_set(
            [
                *SECRET_SET,
                "api.timeline.jaegerQueryUrl=http://query.internal:16686",
                "api.timeline.jaegerUiUrl=https://traces.example.com",
            ]
        ),
    )
    config = config_data(docs, service_deployments(docs)["api"]["metadata"]["name"])
    assert config["API_TIMELINE_JAEGER_QUERY_URL"] == "http://query.internal:16686"
    assert config["API_TIMELINE_JAEGER_UI_URL"] == "https://traces.example.com"


def test_the_in_chart_collector_keeps_traces_whole(observability_docs: list[Doc]) -> None:
    [config_map] = [
        d for d in of_kind(observability_docs, "ConfigMap") if component(d) == "otel-collector"
    ]
    [text] = config_map["data"].values()
    tail = yaml.safe_load(text)["processors"]["tail_sampling"]
    assert tail["decision_wait"] == "30s"
    assert tail["decision_cache"] == {
        "sampled_cache_size": 200000,
        "non_sampled_cache_size": 200000,
    }
    assert {p["type"] for p in tail["policies"]} >= {"status_code", "latency", "probabilistic"}


def test_no_pod_mounts_a_service_account_token(any_docs: list[Doc]) -> None:
    for account in of_kind(any_docs, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False, account["metadata"]["name"]
    for deployment in of_kind(any_docs, "Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        assert spec["automountServiceAccountToken"] is False, deployment["metadata"]["name"]


def test_every_service_has_a_disruption_budget(any_docs: list[Doc]) -> None:
    budgets = {component(p) for p in of_kind(any_docs, "PodDisruptionBudget")}
    assert set(SERVICES) <= budgets
