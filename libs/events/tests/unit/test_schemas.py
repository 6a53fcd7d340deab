"""Contract test: the committed JSON Schemas are exactly what the models produce.

After changing an event, regenerate them with
``uv run --no-sync python -c "from pathlib import Path; from integr8scode_events.schemas import
write_schemas; write_schemas(Path('libs/events/schemas'))"`` and review the diff: a change there
is a change of the contract between producers and consumers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from integr8scode_events.events import EVENT_TYPES
from integr8scode_events.schemas import event_schemas, write_schemas

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def _committed() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(SCHEMAS.glob("*.json"))}


def test_every_event_type_has_a_schema_file_and_none_is_stale() -> None:
    assert set(_committed()) == set(EVENT_TYPES)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_committed_schema_equals_the_model(event_type: str) -> None:
    assert _committed()[event_type] == event_schemas()[event_type], (
        f"{event_type}: the model and libs/events/schemas/{event_type}.json differ; "
        "regenerate with write_schemas and review the contract change"
    )


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_contract_facts(event_type: str) -> None:
    schema = _committed()[event_type]
    assert {"producer", "correlation_id", "payload"} <= set(schema["required"])
    assert schema["properties"]["event_type"]["const"] == event_type
    assert schema["additionalProperties"] is False
    assert schema["properties"]["occurred_at"]["format"] == "date-time"
    assert schema["properties"]["event_id"]["format"] == "uuid"
    payload = schema["$defs"][schema["properties"]["payload"]["$ref"].split("/")[-1]]
    assert payload["additionalProperties"] is False


def test_write_schemas_writes_what_the_test_reads(tmp_path: Path) -> None:
    written = write_schemas(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(f"{t}.json" for t in EVENT_TYPES)
    for path in written:
        assert json.loads(path.read_text()) == event_schemas()[path.stem]
        assert path.read_text() == (SCHEMAS / path.name).read_text()
