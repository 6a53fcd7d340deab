"""Talks to the throwaway kube-apiserver of server-dryrun.sh (standard library + PyYAML only).

    cluster.py namespace NAME [KEY=VALUE ...]   create a namespace with labels and its `default`
                                                ServiceAccount (there is no controller-manager)
    cluster.py stored MANIFEST NAMESPACE        every object of a rendered manifest, as the API
                                                server stored it: nothing the chart sets may be
                                                dropped or changed (defaulting only adds)
    cluster.py podsecurity NAMESPACE            each Deployment's pod template created as a Pod
                                                (dryRun=All) in the psa-<level> namespaces:
                                                the strictest Pod Security level it is admitted at

Connection: K8S_SERVER, K8S_CA, K8S_CERT, K8S_KEY (a client certificate of system:masters).
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import yaml

LEVELS = ("restricted", "baseline", "privileged")
# The coordinator's sandbox needs an Unmasked /proc (hence hostUsers: false) and AppArmor
# unconfined (values.yaml, SANDBOX-PRIVILEGES); every other pod meets `restricted`.
EXPECTED_LEVEL = {"coordinator": "privileged"}
DEFAULT_LEVEL = "restricted"
# What a node-installed AppArmor profile instead of Unconfined would change for the coordinator.
APPARMOR_LOCALHOST = {"type": "Localhost", "localhostProfile": "integr8scode-coordinator"}

Obj = dict[str, Any]


def _context() -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=os.environ["K8S_CA"])
    ctx.load_cert_chain(os.environ["K8S_CERT"], os.environ["K8S_KEY"])
    return ctx


CTX = _context()
SERVER = os.environ["K8S_SERVER"]
if not SERVER.startswith("https://"):
    raise SystemExit("K8S_SERVER must be an https:// URL")


def call(method: str, path: str, body: Obj | None = None) -> tuple[int, Obj, list[str]]:
    """(status, JSON answer, Warning headers) of one API request."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(SERVER + path, data=data, method=method)  # noqa: S310 - https only
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=CTX, timeout=30) as resp:  # noqa: S310
            return resp.status, json.load(resp), resp.headers.get_all("Warning") or []
    except urllib.error.HTTPError as err:
        return err.code, json.load(err), err.headers.get_all("Warning") or []


def ensure(method: str, path: str, body: Obj) -> None:
    status, answer, _ = call(method, path, body)
    if status not in (200, 201, 409):
        raise SystemExit(f"{method} {path}: {status} {answer.get('message', answer)}")


def cmd_namespace(name: str, *labels: str) -> None:
    meta = {"name": name, "labels": dict(label.split("=", 1) for label in labels)}
    ensure(
        "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
    )
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    ensure("POST", f"/api/v1/namespaces/{name}/serviceaccounts", account)


def _resource_paths() -> dict[tuple[str, str], tuple[str, bool]]:
    """(apiVersion, kind) -> (collection path without namespace, namespaced) from discovery."""
    paths: dict[tuple[str, str], tuple[str, bool]] = {}
    versions = [("v1", "/api/v1")]
    _, groups, _ = call("GET", "/apis")
    for group in groups["groups"]:
        for version in group["versions"]:
            versions.append((version["groupVersion"], "/apis/" + version["groupVersion"]))
    for group_version, base in versions:
        _, listing, _ = call("GET", base)
        for res in listing.get("resources", []):
            if "/" not in res["name"]:
                paths[(group_version, res["kind"])] = (f"{base}/{res['name']}", res["namespaced"])
    return paths


def _url(paths: dict[tuple[str, str], tuple[str, bool]], doc: Obj, namespace: str) -> str:
    base, namespaced = paths[(doc["apiVersion"], doc["kind"])]
    if namespaced:
        group_path, resource = base.rsplit("/", 1)
        base = f"{group_path}/namespaces/{doc['metadata'].get('namespace', namespace)}/{resource}"
    return f"{base}/{doc['metadata']['name']}"


def _differences(want: Any, got: Any, where: str) -> list[str]:
    """Where `got` lacks or changes something of `want` (extra fields in `got` are defaults)."""
    if isinstance(want, dict) and isinstance(got, dict):
        out: list[str] = []
        for key, value in want.items():
            if key not in got:
                # The API server omits null and empty fields; false, 0 and "" must be kept.
                if value not in (None, {}, []):
                    out.append(f"{where}.{key}: dropped")
            else:
                out.extend(_differences(value, got[key], f"{where}.{key}"))
        return out
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return [f"{where}: {len(want)} items, stored {len(got)}"]
        return [
            d
            for i, (w, g) in enumerate(zip(want, got, strict=True))
            for d in _differences(w, g, f"{where}[{i}]")
        ]
    if want != got and str(want) != str(got):
        return [f"{where}: {want!r} stored as {got!r}"]
    return []


def cmd_stored(manifest: str, namespace: str) -> None:
    with open(manifest) as handle:
        docs = [d for d in yaml.safe_load_all(handle) if d]
    paths = _resource_paths()
    problems: list[str] = []
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        status, stored, _ = call("GET", _url(paths, doc, namespace))
        if status != 200:
            problems.append(f"{name}: not stored ({status} {stored.get('message')})")
            continue
        want = {k: v for k, v in doc.items() if k not in ("metadata", "stringData")}
        problems.extend(_differences(want, stored, name))
    for problem in problems:
        print(f"    {problem}", file=sys.stderr)
    if problems:
        raise SystemExit(f"{len(problems)} field(s) of the chart not stored as rendered")
    print(f"{len(docs)} objects stored, every rendered field kept")


def _strictest_level(pod: Obj) -> tuple[str | None, dict[str, str]]:
    """The strictest level whose enforcing namespace admits `pod`, and each refusal's reason."""
    refusals: dict[str, str] = {}
    admitted = None
    for level in reversed(LEVELS):
        status, answer, _ = call("POST", f"/api/v1/namespaces/psa-{level}/pods?dryRun=All", pod)
        if status in (200, 201):
            admitted = level
        else:
            refusals[level] = answer.get("message", str(answer))
    return admitted, refusals


def cmd_podsecurity(namespace: str) -> None:
    _, deployments, _ = call("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments")
    failed = False
    for deployment in deployments["items"]:
        labels = deployment["metadata"]["labels"]
        component = labels.get("app.kubernetes.io/component", deployment["metadata"]["name"])
        template = deployment["spec"]["template"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"psa-{component}", "labels": template["metadata"]["labels"]},
            "spec": {**template["spec"], "serviceAccountName": "default"},
        }
        level, refusals = _strictest_level(pod)
        expected = EXPECTED_LEVEL.get(component, DEFAULT_LEVEL)
        mark = "ok" if level == expected else "UNEXPECTED"
        failed |= level != expected
        print(f"    {component:<15} admitted at {level or 'no level'} (expected {expected}) {mark}")
        for refused, reason in refusals.items():
            print(f"      refused at {refused}: {reason.split(': ', 1)[-1]}")
        if component == "coordinator":
            variant = json.loads(json.dumps(pod))
            for container in variant["spec"]["containers"]:
                container["securityContext"]["appArmorProfile"] = APPARMOR_LOCALHOST
            level, refusals = _strictest_level(variant)
            print(f"    {component:<15} with a Localhost AppArmor profile: admitted at {level}")
            for refused, reason in refusals.items():
                print(f"      refused at {refused}: {reason.split(': ', 1)[-1]}")
    if failed:
        raise SystemExit("a pod's Pod Security level is not the one the chart documents")


def main(argv: list[str]) -> None:
    commands: dict[str, Callable[..., None]] = {
        "namespace": cmd_namespace,
        "stored": cmd_stored,
        "podsecurity": cmd_podsecurity,
    }
    if len(argv) < 2 or argv[1] not in commands:
        raise SystemExit(__doc__)
    commands[argv[1]](*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
