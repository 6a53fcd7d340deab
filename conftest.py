"""Marks tests by folder: tests under `integration` or `e2e` need the running stack; tests under
`containers` need the service images running in its place (`make container-test`)."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        if "e2e" in parts:
            item.add_marker(pytest.mark.e2e)
        if "containers" in parts:
            item.add_marker(pytest.mark.containers)
