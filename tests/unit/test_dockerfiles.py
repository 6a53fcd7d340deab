"""The five Dockerfiles are one recipe with per-service values: they may not drift apart.

Each service keeps its own Dockerfile (built on its own, named in docker-compose.yml and the
chart), so the shared recipe is written five times; this test is what keeps the copies equal.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# directory: (service.name, env prefix, port, entry point)
SERVICES = {
    "api": ("integr8scode-backend", "API", 8000, "integr8scode-api"),
    "coordinator": ("execution-coordinator", "COORDINATOR", 8001, "integr8scode-coordinator"),
    "dlq-processor": ("dlq-processor", "DLQ", 8002, "integr8scode-dlq-processor"),
    "event-replay": ("event-replay", "REPLAY", 8003, "integr8scode-event-replay"),
    "notifier": ("notifier", "NOTIFIER", 8004, "integr8scode-notifier"),
}
# The libs only some services install, and which: libs/secrets where stored credentials are
# sealed or opened (so `cryptography` is in those images only), libs/auth where an admin API
# checks the api's tokens. The others don't carry them.
OPTIONAL_LIBS = {
    "secrets": {"api", "notifier"},
    "auth": {"dlq-processor", "event-replay"},
}
# What only the coordinator's image adds: the sandbox's packages, and tini as pid 1.
COORDINATOR_ONLY = re.compile(
    r"# The sandbox runner needs.*?/var/cache/apt/archives/\*\.deb\n", re.DOTALL
)


def _recipe(directory: str) -> str:
    service, prefix, port, entry = SERVICES[directory]
    text = (ROOT / "services" / directory / "Dockerfile").read_text()
    text = re.sub(r'description="[^"]*"', 'description="…"', text)
    text = re.sub(r"^# .*\(.*\)\.\n", "# <service> (…).\n", text, count=1)
    for value, placeholder in (
        (entry, "<entry>"),
        (f"services/{directory}", "services/<dir>"),
        (f"integr8scode/{directory}", "integr8scode/<dir>"),
        (f'service-name="{service}"', 'service-name="<service>"'),
        (f"{prefix}_", "<PREFIX>_"),
        (str(port), "<port>"),
    ):
        text = text.replace(value, placeholder)
    for lib, users in OPTIONAL_LIBS.items():
        for part in (f"COPY libs/{lib} ./libs/{lib}\n", f" ./libs/{lib}"):
            if directory in users:
                assert text.count(part) == 1, f"{directory} must install libs/{lib}: {part!r}"
                text = text.replace(part, "")
            else:
                assert part not in text, f"{directory} has no use for libs/{lib}"
    if directory == "coordinator":
        text, found = COORDINATOR_ONLY.subn("", text)
        assert found == 1, "the coordinator's sandbox packages are missing"
        text = text.replace('["tini", "--", "<entry>"]', '["<entry>"]')
    return text


@pytest.mark.parametrize("directory", sorted(set(SERVICES) - {"api"}))
def test_every_dockerfile_is_the_apis_recipe_with_its_own_values(directory: str) -> None:
    assert _recipe(directory) == _recipe("api")


def test_the_recipe_has_what_the_images_promise() -> None:
    recipe = _recipe("api")
    assert "ARG BASE_IMAGE=python:3.11-slim" in recipe
    assert "--no-sources" in recipe  # real wheels, not editable links into /src
    assert "USER 10001:10001" in recipe
    assert 'CMD ["<entry>", "healthcheck"]' in recipe
    final_stage = recipe.split("\nFROM ${BASE_IMAGE}\n", 1)[1]
    assert "COPY --from=build /opt/venv /opt/venv" in final_stage
    assert "/src" not in final_stage
    assert "uv" not in final_stage.replace("PYTHONUNBUFFERED", "")
