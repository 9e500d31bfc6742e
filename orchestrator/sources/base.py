"""What every source shares: the record type, the bad-input policy (stop, or skip and count) and health tallies.

A source reads units (lines, EVTX records, zip members); each unit that cannot be read becomes one located message,
``where: reason``, which either stops the run as an InputError or, with ``skip_bad``, is handed to ``on_skip``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from orchestrator.errors import InputError
from orchestrator.schema import normalise_health

Record = tuple[str, dict[str, Any]]
OnSkip = Callable[[str], None] | None


def open_input(path: Path, expected: str) -> BinaryIO:
    """``path`` opened for reading, or an InputError naming it (a directory, missing, unreadable)."""
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected {expected}")
    try:
        return path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None


class BadInput:
    """The skip_bad/on_skip policy, shared so that every source treats a bad unit the same way as read_jsonl."""

    def __init__(self, skip_bad: bool, on_skip: OnSkip) -> None:
        self.skip_bad = skip_bad
        self.on_skip = on_skip

    def __call__(self, where: str, reason: object) -> None:
        message = f"{where}: {reason}"
        if not self.skip_bad:
            raise InputError(message)
        if self.on_skip:
            self.on_skip(message)


class Health:
    """Counts of what a source could not see or chose not to read, emitted as health rows once the input is read.

    Counting instead of emitting one row per event keeps a log with a million inbound connections to one row.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def note(self, host: str, check: str, message: str, count: int = 1) -> None:
        self._counts[(host, check, message)] += count

    def records(self) -> Iterator[Record]:
        for (host, check, message), count in sorted(self._counts.items()):
            yield "health", normalise_health({"host": host, "check": check, "count": count, "message": message},
                                             default_source=self.source)


def json_lines(handle: IO[bytes]) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, value, None) per non-empty line, or (line number, None, reason) for a line that is not JSON."""
    for number, raw in enumerate(handle, start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            yield number, None, f"not UTF-8 (byte {exc.start})"
            continue
        try:
            yield number, json.loads(text), None
        except json.JSONDecodeError as exc:
            yield number, None, f"malformed JSON: {exc.msg} (column {exc.colno})"
        except RecursionError:  # json's decoder recurses per nesting level: a hostile line must not crash a reader
            yield number, None, "JSON nested too deeply"


def json_array_items(handle: IO[bytes], chunk_size: int = 1 << 16) -> Iterator[tuple[int, Any]]:
    """(line number, item) for each item of one top-level JSON array, read a chunk at a time.

    ``osqueryi --json`` prints one array; decoding it item by item keeps a large result out of memory at once.
    Raises ValueError("line N: reason") where the text stops being a JSON array.
    """
    decoder = json.JSONDecoder()
    buffer = ""
    line = 1
    eof = False
    started = False
    expect_item = True  # after '[' or ','

    def more() -> bool:
        nonlocal buffer, eof
        if eof:
            return False
        chunk = handle.read(chunk_size)
        if not chunk:
            eof = True
            return False
        try:
            buffer += chunk.decode("utf-8") if isinstance(chunk, bytes) else chunk
        except UnicodeDecodeError as exc:
            raise ValueError(f"line {line}: not UTF-8 (byte {exc.start} of a chunk)") from None
        return True

    def skip_space() -> None:
        nonlocal buffer, line
        stripped = buffer.lstrip(" \t\r\n\ufeff")
        line += buffer.count("\n", 0, len(buffer) - len(stripped))
        buffer = stripped

    while True:
        skip_space()
        if not buffer:
            if more():
                continue
            raise ValueError(f"line {line}: the JSON array ends early (truncated file?)")
        if not started:
            if buffer[0] != "[":
                raise ValueError(f"line {line}: expected a JSON array")
            buffer, started = buffer[1:], True
            continue
        if buffer[0] == "]":
            return
        if not expect_item:
            if buffer[0] != ",":
                raise ValueError(f"line {line}: expected ',' or ']' between array items")
            buffer, expect_item = buffer[1:], True
            continue
        try:
            item, end = decoder.raw_decode(buffer)
        except RecursionError:
            raise ValueError(f"line {line}: JSON nested too deeply") from None
        except json.JSONDecodeError as exc:
            # An item cut by the chunk boundary: read more and try again; at the end of the file it is malformed.
            if more():
                continue
            raise ValueError(f"line {line + exc.lineno - 1}: malformed JSON: {exc.msg}") from None
        if end == len(buffer) and not eof and isinstance(item, (int, float)):
            # a number at the end of the buffer may continue in the next chunk
            if more():
                continue
        yield line, item
        line += buffer.count("\n", 0, end)
        buffer, expect_item = buffer[end:], False


def first_json_value(head: bytes) -> Any:
    """The first JSON object or array that starts a file, from its first bytes; None if there is none."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if text.startswith("["):
        return []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return None
    return None


def windows_basename(path: str | None) -> str | None:
    """The file name of a Windows or POSIX path (ntpath would not split POSIX paths on every platform the same)."""
    if not path:
        return None
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or None


def blank_to_none(record: dict[str, Any]) -> dict[str, Any]:
    """osquery and Velociraptor write an unknown value as "" or null; the schema wants it absent."""
    return {key: value for key, value in record.items() if value is not None and value != ""}


def as_bool(value: Any) -> bool | None:
    """true/false in any of the spellings these tools use (JSON bool, "true", "True", "1")."""
    if isinstance(value, bool):
        return value
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    return None


def chain(*parts: Iterable[Record]) -> Iterator[Record]:
    for part in parts:
        yield from part
