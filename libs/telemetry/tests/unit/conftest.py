"""A stand-in collector for the exporter tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.fake_collector import FakeCollector


@pytest.fixture
def collector() -> Iterator[FakeCollector]:
    server = FakeCollector()
    yield server
    server.stop()
