"""Shared by the source tests: read a file the way `connhunt score` does, and check a one-line bad-input error."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from orchestrator.sources import read_any
from tests.conftest import run_connhunt

DATA = Path(__file__).resolve().parent / "data"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def read(path: Path, **kwargs: Any) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    name, records = read_any(path, **kwargs)
    return name, list(records)


def rows(records: list[tuple[str, dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
    return [row for k, row in records if k == kind]


def health(records: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    return {row["check"]: row["count"] for row in rows(records, "health")}


def score_json(*paths: Path, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    result = run_connhunt("score", *map(str, paths), "--format", "json", *extra)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def one_line_error(result: subprocess.CompletedProcess[str], where: str) -> str:
    """The single error line of a bad-input run (exit 2, no traceback, nothing on stdout)."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("connhunt: error: "), lines[0]
    assert where in lines[0], lines[0]
    assert result.stdout == ""
    return lines[0]
