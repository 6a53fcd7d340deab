"""Importing a contract loads no infrastructure client and no web framework.

Domain code depends on the events contract, the telemetry attribute names and its own domain
package; none of them may pull in aiokafka, pymongo, redis, FastAPI or the OpenTelemetry SDK
(they are the adapters' and the composition root's). Each case runs in a fresh interpreter, so
nothing an earlier test imported hides a regression. The import-linter contracts in
pyproject.toml say the same statically; this is what the interpreter actually loads, through
every package ``__init__`` on the way, and it covers modules added later (walked, not listed).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("aiokafka", "pymongo", "redis", "fastapi", "opentelemetry.sdk")

# Imports ``modules``, and every module below the packages in ``walk`` except ``skip`` and what
# is below it; then prints what it imported and which of HEAVY got loaded.
_PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys

    modules, walk, skip, heavy = json.loads(sys.argv[1])
    imported = []

    def load(name, recurse):
        # By hand, not pkgutil.walk_packages: that imports a subpackage to look inside it,
        # the skipped one too.
        module = importlib.import_module(name)
        imported.append(name)
        for info in pkgutil.iter_modules(getattr(module, "__path__", []) if recurse else []):
            if name + "." + info.name not in skip:
                load(name + "." + info.name, recurse)

    for name in modules:
        load(name, recurse=False)
    for name in walk:
        load(name, recurse=True)
    print(json.dumps({"imported": imported, "loaded": [m for m in heavy if m in sys.modules]}))
    """
)


def _load(
    modules: list[str] = [],  # noqa: B006 - never mutated
    walk: list[str] = [],  # noqa: B006
    skip: list[str] = [],  # noqa: B006
) -> dict[str, list[str]]:
    spec = json.dumps([modules, walk, skip, HEAVY])
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, spec], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str]] = json.loads(done.stdout)
    return result


def test_the_events_contract_loads_neither_kafka_nor_mongo() -> None:
    result = _load(walk=["integr8scode_events"], skip=["integr8scode_events.kafka"])
    # The walk found the contract's modules (not only the package face).
    assert {"integr8scode_events.envelope", "integr8scode_events.tracing"} <= set(
        result["imported"]
    )
    assert result["loaded"] == []


@pytest.mark.parametrize(
    "module",
    [
        "integr8scode_telemetry.attributes",
        "integr8scode_telemetry.spans",
        "integr8scode_telemetry.background",
        "integr8scode_telemetry.lifespan",
        "integr8scode_telemetry.supervisor",
    ],
)
def test_light_telemetry_modules_load_no_framework_and_no_sdk(module: str) -> None:
    assert _load(modules=[module])["loaded"] == []


@pytest.mark.parametrize(
    "package",
    [
        "integr8scode_api.domain",
        "integr8scode_coordinator.domain",
        "integr8scode_dlq_processor.domain",
        "integr8scode_event_replay.domain",
        "integr8scode_notifier.domain",
    ],
)
def test_a_domain_package_loads_no_infrastructure(package: str) -> None:
    result = _load(walk=[package])
    assert len(result["imported"]) > 1, "the walk found no domain module"
    assert result["loaded"] == []


def test_the_check_sees_what_the_heavy_side_loads() -> None:
    # The same probe on the Kafka side and the service faces: it does report them.
    assert {"aiokafka", "pymongo"} <= set(_load(modules=["integr8scode_events.kafka"])["loaded"])
    assert {"fastapi", "opentelemetry.sdk"} <= set(
        _load(modules=["integr8scode_telemetry.setup"])["loaded"]
    )
