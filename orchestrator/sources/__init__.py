"""Sources: each reads one wire format and yields (kind, schema row) records; none scores or prints.

``read_any`` picks the reader for a path by its content, so `connhunt score` takes any supported file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from orchestrator.sources.jsonl import read_jsonl

Record = tuple[str, dict[str, Any]]


def read_any(path: Path, *, skip_bad: bool = False,
             on_skip: Callable[[str], None] | None = None) -> tuple[str, Iterator[Record]]:
    """(source name, records) for ``path``."""
    return "jsonl", read_jsonl(path, skip_bad=skip_bad, on_skip=on_skip)
