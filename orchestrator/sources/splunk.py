"""Windows events exported from Splunk (sourcetype XmlWinEventLog, renderXml=true): the JSON and the CSV export.

- JSON (search/jobs/export with output_mode=json, or Export > JSON in the UI): one object per line,
  ``{"preview": false, "offset": N, "result": {"_raw": "<Event xmlns=...>...</Event>", "_time": ..., "host": ...}}``;
  lines without a ``result`` (messages, the last-row marker) are not events.
- CSV (Export > CSV): a header row naming the fields, one of them ``_raw``; the XML spans several lines inside one
  quoted field.
``_raw`` is the event's XML as Windows renders it (the Event schema of
http://schemas.microsoft.com/win/2004/08/events/event). It is parsed with the standard library after refusing any
DTD or entity declaration, the defusedxml rule: expat would otherwise expand internal entities without bound
("billion laughs"); external entities are never fetched by ElementTree.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from orchestrator.schema import SchemaError
from orchestrator.sources.base import open_input
from orchestrator.sources.windows_events import WinEvent, event_id, host_of, json_value, line_units, reader_for

_CSV_FIELD_LIMIT = 16 << 20  # one Sysmon event's XML is a few KiB; this bounds a hostile field, not a real one
_XML_LIMIT = 4 << 20


def is_splunk_json(first: Any) -> bool:
    """A results line, or the messages / last-row line an export can start with."""
    return isinstance(first, Mapping) and "preview" in first and (
        isinstance(first.get("result"), Mapping) or "messages" in first or "lastrow" in first)


def is_splunk_csv(first_line: bytes) -> bool:
    """A CSV header with a _raw column (Splunk quotes every header name)."""
    header = first_line.lstrip(b"\xef\xbb\xbf").strip()
    return not header.startswith((b"{", b"[")) and (b'"_raw"' in header or header.split(b",").count(b"_raw") == 1)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def xml_event(text: Any, default_host: Any = None) -> WinEvent:
    """The WinEvent of one <Event> XML document."""
    if not isinstance(text, str) or not text.strip():
        raise SchemaError("no _raw event XML")
    if len(text) > _XML_LIMIT:
        raise SchemaError(f"_raw is {len(text)} characters, more than an event's XML can be")
    head = text.lstrip()
    if not head.startswith("<"):
        raise SchemaError("_raw is not XML: export the XmlWinEventLog sourcetype (renderXml=true)")
    lowered = text.lower()
    if "<!doctype" in lowered or "<!entity" in lowered:
        raise SchemaError("_raw XML declares a DTD or entities: refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise SchemaError(f"_raw is not well-formed XML: {exc}") from None
    if _local(root.tag) != "Event":
        raise SchemaError(f"_raw XML is a <{_local(root.tag)}>, not an <Event>")
    system: dict[str, ET.Element] = {}
    data: dict[str, Any] = {}
    for part in root:
        if _local(part.tag) == "System":
            system = {_local(child.tag): child for child in part}
        elif _local(part.tag) == "EventData":
            for item in part:
                name = item.get("Name")
                if name is not None:
                    data[name] = item.text
    if not system:
        raise SchemaError("_raw XML has no <System>")
    number = event_id(system["EventID"].text if "EventID" in system else None)
    computer = system["Computer"].text if "Computer" in system else default_host
    provider = system["Provider"].get("Name") if "Provider" in system else None
    logged = system["TimeCreated"].get("SystemTime") if "TimeCreated" in system else None
    return WinEvent(number, host_of(computer), provider or None, logged, data)


class _SplunkJson:
    source = "splunk"
    noun = "event"
    markers = ("ParentImage",)

    def units(self, path: Path) -> Iterator[tuple[str, Any, str | None]]:
        return line_units(path)

    def event(self, raw: Any) -> WinEvent | None:
        value = json_value(raw)
        if not isinstance(value, Mapping):
            raise SchemaError(f"expected a JSON object, got {type(value).__name__}")
        result = value.get("result")
        if result is None:
            return None  # a messages or last-row line
        if not isinstance(result, Mapping):
            raise SchemaError("'result' must be an object")
        return xml_event(result.get("_raw"), result.get("host"))


class _SplunkCsv:
    source = "splunk"
    noun = "event"
    markers = ("ParentImage",)

    def units(self, path: Path) -> Iterator[tuple[str, Any, str | None]]:
        csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
        handle = open_input(path, "a Splunk CSV export")
        with handle, io.TextIOWrapper(handle, encoding="utf-8-sig", errors="strict", newline="") as text:
            reader = csv.reader(text)
            try:
                header = next(reader)
            except (csv.Error, UnicodeDecodeError, StopIteration) as exc:
                yield f"{path}:1", None, f"not a CSV header: {exc}"
                return
            if "_raw" not in header:
                yield f"{path}:1", None, "CSV header has no _raw column (export the _raw field)"
                return
            raw_at = header.index("_raw")
            line = reader.line_num
            while True:
                start = line + 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except UnicodeDecodeError as exc:
                    yield f"{path}:{start}", None, f"not UTF-8 (byte {exc.start})"
                    return  # the decoder cannot resume mid-stream
                except csv.Error as exc:
                    yield f"{path}:{start}", None, f"malformed CSV: {exc}"
                    if reader.line_num == line:
                        return  # no progress: nothing more can be read
                    line = reader.line_num
                    continue
                line = reader.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    yield f"{path}:{start}", None, f"{len(row)} fields where the header has {len(header)}"
                    continue
                yield f"{path}:{start}", row[raw_at], None  # the XML names its Computer

    def event(self, raw: Any) -> WinEvent | None:
        return xml_event(raw)


SPLUNK_JSON = _SplunkJson()
SPLUNK_CSV = _SplunkCsv()
read_splunk_json = reader_for(SPLUNK_JSON)
read_splunk_csv = reader_for(SPLUNK_CSV)
