"""Reads connhunt's own JSONL (agent_local's output, or rows exported from a hunt) into schema rows.

Each line is one JSON object with ``kind`` connection, listener, dns or health (no kind means connection). A bad
line is an InputError naming ``file:line``; with ``skip_bad`` it is counted and skipped instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError
from orchestrator.schema import SchemaError, normalise
from orchestrator.sources.base import open_input

Record = tuple[str, dict[str, Any]]


def read_jsonl(path: Path, *, skip_bad: bool = False, on_skip: Callable[[str], None] | None = None) -> Iterator[Record]:
    """Yield (kind, schema row) for every line of ``path``."""
    handle = open_input(path, "a JSONL file")
    seen_any = False
    with handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 BOM, as Windows editors and PowerShell write
            if not raw.strip():
                continue
            seen_any = True
            try:
                yield _parse_line(raw)
            except (SchemaError, InputError) as exc:
                message = f"{path}:{number}: {exc}"
                if not skip_bad:
                    raise InputError(message) from None
                if on_skip:
                    on_skip(message)
    if not seen_any:
        raise InputError(f"{path}: empty file, no records")


def _parse_line(raw: bytes) -> Record:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 (byte {exc.start})") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(record, dict):
        raise InputError(f"expected a JSON object, got {type(record).__name__}")
    kind = record.get("kind", "connection")
    if not isinstance(kind, str):
        raise InputError(f"unknown record kind {kind!r}")
    return normalise(kind, record, default_source="jsonl")
