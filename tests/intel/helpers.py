"""Shared by the intel tests: the fixture folder, an expected IocRow spelled out, and loading with notes."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from orchestrator.intel import load_intel

DATA = Path(__file__).resolve().parent / "data"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def expected(kind: str, value: str, source_file: Path, source_format: str, **fields: Any) -> dict[str, Any]:
    """A whole expected row: every IocRow column, the ones a test does not name at their empty value."""
    row: dict[str, Any] = {"kind": kind, "value": value, "network": False, "port": None, "host": None,
                           "conjunctive": False, "source_file": str(source_file), "source_format": source_format,
                           "source_line": None, "indicator_id": None, "name": None, "description": None,
                           "confidence": None, "valid_from": None, "valid_until": None, "first_seen": None,
                           "last_seen": None, "tags": [], "reference": None}
    unknown = set(fields) - set(row)
    assert not unknown, unknown
    row.update(fields)
    return row


def load(*paths: Path) -> tuple[list[dict[str, Any]], list[str]]:
    notes: list[str] = []
    rows = [dict(row) for row in load_intel(paths, on_note=notes.append)]
    return rows, notes
