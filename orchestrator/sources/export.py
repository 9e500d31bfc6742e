"""The containers EDR and SIEM exports come in, read item by item for the readers that map their fields.

One export holds its records as JSON lines (NDJSON), one JSON array, one JSON document that wraps them (an API
response such as ``{"hits": {"hits": [...]}}`` or ``{"Results": [...]}``, also one such document per line), or CSV
with a header row. ``read_export`` streams whichever it is, hands each item to a format's ``convert`` and applies
the shared bad-input policy: each bad item is one located message (``file:line``, or ``file:line: record N`` inside
a wrapper), and a file in which no item could be read at all is an error, never an empty report.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from orchestrator.errors import InputError
from orchestrator.schema import SchemaError
from orchestrator.sources.base import BadInput, Health, OnSkip, Record, json_array_items, json_lines, open_input

# A wrapper document that is not one line (pretty-printed API output) is decoded whole; past this size that would
# take several times its size in memory, so the responder is asked for the line-per-record form instead.
DOCUMENT_LIMIT = 256 << 20
# csv's own limit (128 KiB) would reject a long but real command line; 16 MiB still bounds a malformed field.
CSV_FIELD_LIMIT = 16 << 20

Unwrap = Callable[[Any], "list[Any] | None"]
Convert = Callable[[Any, Health], Iterable[Record]]


def _no_wrapper(value: Any) -> None:
    return None


def field(doc: Mapping[str, Any], dotted: str) -> Any:
    """``doc["a"]["b"]["c"]`` for ``"a.b.c"``, or the flattened key ``doc["a.b.c"]`` (both spellings occur)."""
    if dotted in doc:
        return doc[dotted]
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def first_byte(path: Path) -> bytes:
    """The first byte of the file that is not white space or a BOM: tells JSON from CSV."""
    with open_input(path, "an export file") as handle:
        for _ in range(4096):
            chunk = handle.read(256)
            if not chunk:
                return b""
            stripped = chunk.lstrip(b"\xef\xbb\xbf \t\r\n")
            if stripped:
                return stripped[:1]
    return b""


def export_items(path: Path, unwrap: Unwrap) -> Iterator[tuple[str, Any, str | None]]:
    """(where, item, None) per record of the export at ``path``, or (where, None, reason) for one that is unreadable.

    A broken container (a JSON array cut short, a document that does not parse) ends the iteration with a last
    (where, None, reason): nothing after that point can be located.
    """
    start = first_byte(path)
    if start == b"[":
        yield from _array_items(path, unwrap)
    elif start == b"{":
        yield from _json_items(path, unwrap)
    elif start:
        yield from csv_items(path)


def _array_items(path: Path, unwrap: Unwrap) -> Iterator[tuple[str, Any, str | None]]:
    with open_input(path, "a JSON export") as handle:
        try:
            for number, item in json_array_items(handle):
                yield from _expanded(f"{path}:{number}", item, unwrap)
        except ValueError as exc:
            line, _, reason = str(exc).partition(": ")
            yield f"{path}:{line.removeprefix('line ')}", None, reason


def _json_items(path: Path, unwrap: Unwrap) -> Iterator[tuple[str, Any, str | None]]:
    with open_input(path, "a JSON export") as handle:
        limit = 1 << 20
        first = handle.readline(limit)
        try:
            json.loads(first)
            one_per_line = True
        except (ValueError, UnicodeDecodeError, RecursionError):
            # a pretty-printed document starts with a short line ("{"); a first line cut at the limit is a long
            # record of a line-per-record file, whose reader then says what is wrong with it
            one_per_line = len(first) >= limit and not first.endswith(b"\n")
        handle.seek(0)
        if one_per_line:
            for number, value, reason in json_lines(handle):
                if reason is not None:
                    yield f"{path}:{number}", None, reason
                else:
                    yield from _expanded(f"{path}:{number}", value, unwrap)
            return
        yield from _document_items(path, handle, unwrap)


def _document_items(path: Path, handle: IO[bytes], unwrap: Unwrap) -> Iterator[tuple[str, Any, str | None]]:
    """The records of one pretty-printed JSON document (an API response saved as it came)."""
    data = handle.read(DOCUMENT_LIMIT + 1)
    if len(data) > DOCUMENT_LIMIT:
        yield str(path), None, (f"one JSON document larger than {DOCUMENT_LIMIT >> 20} MiB: save the records one per "
                                "line (NDJSON) instead")
        return
    try:
        value = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        yield str(path), None, f"not UTF-8 (byte {exc.start})"
        return
    except json.JSONDecodeError as exc:
        yield f"{path}:{exc.lineno}", None, f"malformed JSON: {exc.msg} (column {exc.colno})"
        return
    except RecursionError:
        yield str(path), None, "JSON nested too deeply"
        return
    yield from _expanded(str(path), value, unwrap)


def _expanded(where: str, value: Any, unwrap: Unwrap) -> Iterator[tuple[str, Any, str | None]]:
    try:
        items = unwrap(value)
    except SchemaError as exc:
        yield where, None, str(exc)
        return
    if items is None:
        yield where, value, None
        return
    for index, item in enumerate(items, start=1):
        yield f"{where}: record {index}", item, None


def csv_items(path: Path) -> Iterator[tuple[str, Any, str | None]]:
    """(file:line, row as a dict, None) per CSV data row; the header row names the columns."""
    csv.field_size_limit(CSV_FIELD_LIMIT)
    line = 0
    bad: list[tuple[int, str]] = []

    def lines(handle: IO[bytes]) -> Iterator[str]:
        nonlocal line
        for raw in handle:
            line += 1
            try:
                yield raw.decode("utf-8-sig" if line == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                bad.append((line, f"not UTF-8 (byte {exc.start})"))
                yield "\n"  # keeps the row count in step; the row it starts is reported, not read

    with open_input(path, "a CSV export") as handle:
        reader = csv.reader(lines(handle), strict=True)
        header: list[str] | None = None
        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                yield f"{path}:{line}", None, f"malformed CSV: {exc}"
                continue
            while bad:
                number, reason = bad.pop(0)
                yield f"{path}:{number}", None, reason
            if not values or values == [""] or (header is None and not any(v.strip() for v in values)):
                continue
            if header is None:
                header = [name.strip() for name in values]
                continue
            if len(values) != len(header):
                yield f"{path}:{line}", None, f"expected {len(header)} CSV columns, got {len(values)}"
                continue
            yield f"{path}:{line}", dict(zip(header, values)), None


def read_export(path: Path, *, source: str, convert: Convert, unwrap: Unwrap | None = None,
                items: Iterable[tuple[str, Any, str | None]] | None = None, skip_bad: bool = False,
                on_skip: OnSkip = None, health: Health | None = None) -> Iterator[Record]:
    """Yield the records ``convert`` makes of each item of the export at ``path``, then the health tallies.

    ``items`` replaces the container reading for a format with its own (Zeek's TSV); else ``unwrap`` says which
    documents wrap records.
    """
    bad = BadInput(skip_bad, on_skip)
    health = health or Health(source)
    read = 0
    failed = 0
    if items is None:
        items = export_items(path, unwrap or _no_wrapper)
    for where, item, reason in items:
        if reason is not None:
            failed += 1
            bad(where, reason)
            continue
        try:
            records = list(convert(item, health))
        except SchemaError as exc:
            failed += 1
            bad(where, exc)
            continue
        except RecursionError:
            failed += 1
            bad(where, "value nested too deeply")
            continue
        read += 1
        yield from records
    if not read:
        raise InputError(f"{path}: no valid record" + (f" ({failed} unreadable)" if failed else " (empty file)"))
    yield from health.records()


def first_record(first: Any, unwrap: Callable[[Any], list[Any] | None]) -> Any:
    """The first record of a sniffed export: the first item of a JSON array, then the first record of an API
    response that ``unwrap`` opens (or the value itself when it is a record); None when the response is malformed."""
    if isinstance(first, list):
        first = first[0] if first else None
    try:
        items = unwrap(first)
    except SchemaError:
        return None
    return items[0] if items else first
