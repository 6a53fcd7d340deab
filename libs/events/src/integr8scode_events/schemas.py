"""JSON Schema of every event, for contract tests and for consumers in other languages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from integr8scode_events.events import EVENT_TYPES


def event_schemas() -> dict[str, dict[str, Any]]:
    """``event_type`` -> JSON Schema of the whole envelope with its typed payload."""
    return {name: cls.model_json_schema() for name, cls in sorted(EVENT_TYPES.items())}


def write_schemas(directory: Path) -> list[Path]:
    """Write one ``<event_type>.json`` per event into ``directory``; returns the files."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, schema in event_schemas().items():
        path = directory / f"{name}.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
