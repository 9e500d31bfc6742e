"""Windows events from .evtx files and from the JSON that EVTX tools write, as WinEvents for windows_events.py.

One event can arrive in these JSON shapes, all read by ``json_event``:
- ``{"Event": {"System": ..., "EventData": ...}}``: the `evtx` package's ``records_json()`` and ``evtx_dump -o jsonl``
  (attributes under ``"#attributes"``, or ``"<Name>_attributes"`` with ``--separate-json-attributes``);
- ``{"System": ..., "EventData": ..., "Message": ...}``: Velociraptor's ``parse_evtx()``
  (``System.EventID.Value``, ``System.TimeCreated.SystemTime`` in epoch seconds);
- ``{"EventTime", "Computer", "Provider", "EventID", "EventData", ...}``: Velociraptor's Windows.EventLogs.EvtxHunter;
- ``{"EventId", "Computer", "Provider", "TimeCreated", "Payload": "<json>"}``: EvtxECmd ``--json``, whose Payload is
  the event's EventData as ``{"EventData": {"Data": [{"@Name": ..., "#text": ...}]}}``.
What the events mean (Sysmon 1/3/22, WFP 5154/5156/5157/5158) is windows_events.py's business.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError
from orchestrator.schema import SchemaError
from orchestrator.sources.windows_events import (
    WinEvent,
    event_id,
    host_of,
    ip_answers,
    json_value,
    line_units,
    query_answers,
    reader_for,
)

__all__ = ["EVTX_MAGIC", "ip_answers", "is_sysmon_json", "json_event", "query_answers", "read_evtx",
           "read_sysmon_json"]

EVTX_MAGIC = b"ElfFile\x00"
# An EVTX file is a 4 KiB header then whole 64 KiB chunks (libyal's EVTX format notes); anything else was cut short.
_EVTX_HEADER, _EVTX_CHUNK = 4096, 65536


def is_sysmon_json(first: Any) -> bool:
    """Whether the first JSON value of a file is a Windows event in one of the shapes ``json_event`` reads."""
    if not isinstance(first, Mapping):
        return False
    if isinstance(first.get("data"), str) and "event_record_id" in first:
        return True
    if "EventId" in first and isinstance(first.get("Payload"), str):
        return True
    event = first.get("Event", first)
    return isinstance(event, Mapping) and (
        (isinstance(event.get("System"), Mapping) and "EventID" in event["System"])
        or ("EventID" in event and "EventData" in event))


def json_event(value: Any) -> WinEvent:
    """The WinEvent of one JSON value in any shape this module reads; SchemaError says what is wrong."""
    if not isinstance(value, Mapping):
        raise SchemaError(f"expected a JSON object, got {type(value).__name__}")
    if isinstance(value.get("data"), str) and "event_record_id" in value:  # a records_json() item saved as a line
        try:
            value = json.loads(value["data"])
        except json.JSONDecodeError as exc:
            raise SchemaError(f"'data' is not JSON: {exc.msg}") from None
        if not isinstance(value, Mapping):
            raise SchemaError("'data' must hold a JSON object")
    if "EventId" in value and "Payload" in value:
        return _evtxecmd(value)
    event = value.get("Event", value)
    if not isinstance(event, Mapping):
        raise SchemaError("'Event' must be an object")
    system = event.get("System")
    if isinstance(system, Mapping):
        number = event_id(system.get("EventID"))
        computer = system.get("Computer")
        provider = _attr(system, "Provider", "Name")
        logged = _attr(system, "TimeCreated", "SystemTime")
    else:  # EvtxHunter rows: System already flattened
        number = event_id(event.get("EventID"))
        computer = event.get("Computer")
        provider = event.get("Provider")
        logged = event.get("EventTime")
    # Events without EventData (1102 "log cleared" carries UserData) are judged by their ID like any other: an
    # event this reader does not map is counted and skipped, a mapped one without its fields is a located error.
    return WinEvent(number, host_of(computer), _provider(provider), logged, event_data(event.get("EventData") or {}))


def _evtxecmd(value: Mapping[str, Any]) -> WinEvent:
    payload = value.get("Payload")
    try:
        data = json.loads(payload) if isinstance(payload, str) and payload else {}
    except json.JSONDecodeError as exc:
        raise SchemaError(f"'Payload' is not JSON: {exc.msg}") from None
    if not isinstance(data, Mapping):
        raise SchemaError("'Payload' must hold a JSON object")
    return WinEvent(event_id(value.get("EventId")), host_of(value.get("Computer")), _provider(value.get("Provider")),
                    value.get("TimeCreated"), event_data(data.get("EventData", {})))


def _provider(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, (Mapping, list)):
        raise SchemaError("the provider must be text")
    return str(value)


def _attr(system: Mapping[str, Any], element: str, name: str) -> Any:
    """An XML attribute of a System element in the evtx crate's spelling or Velociraptor's."""
    node = system.get(element)
    if isinstance(node, Mapping):
        attributes = node.get("#attributes", node)
        if isinstance(attributes, Mapping) and name in attributes:
            return attributes[name]
    separate = system.get(f"{element}_attributes")  # evtx_dump --separate-json-attributes
    return separate.get(name) if isinstance(separate, Mapping) else None


def event_data(value: Any) -> Mapping[str, Any]:
    """EventData as {Name: value}, from any of the ways tools fold the <Data Name=...> elements."""
    if value is None:
        raise SchemaError("no EventData")
    if not isinstance(value, Mapping):
        raise SchemaError("'EventData' must be an object")
    items = value.get("Data")
    if isinstance(items, Mapping):
        items = [items]  # EvtxECmd writes a single Data element as an object
    if isinstance(items, list):
        # <Data Name="..."> elements left as a list: {"#attributes": {"Name"}, "#text"} from the evtx crate,
        # {"Name", "Value"} from Velociraptor, {"@Name", "#text"} from EvtxECmd
        flat = {}
        for item in items:
            if not isinstance(item, Mapping):
                continue
            if isinstance(item.get("#attributes"), Mapping):
                flat[str(item["#attributes"].get("Name"))] = item.get("#text")
            elif "@Name" in item:
                flat[str(item["@Name"])] = item.get("#text")
            elif "Name" in item:
                flat[str(item["Name"])] = item.get("Value")
        return flat
    return value


class _JsonLines:
    """Any of the JSON-lines shapes above, one event per line."""

    source = "sysmon"
    noun = "event"
    markers = ("ParentImage",)

    def units(self, path: Path) -> Iterator[tuple[str, Any, str | None]]:
        return line_units(path)

    def event(self, raw: Any) -> WinEvent | None:
        return json_event(json_value(raw))


class _Evtx:
    """An .evtx file, parsed by the `evtx` package (Rust) to the same JSON as evtx_dump."""

    source = "evtx"
    noun = "EVTX event record"
    markers = ("ParentImage",)

    def units(self, path: Path) -> Iterator[tuple[str, Any, str | None]]:
        from evtx import PyEvtxParser  # imported here: only .evtx input needs the Rust extension

        try:
            parser = PyEvtxParser(str(path))
        except (OSError, RuntimeError, ValueError) as exc:
            raise InputError(f"{path}: not a readable EVTX file: {_one_line(exc)}") from None
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None
        if size > _EVTX_HEADER and (size - _EVTX_HEADER) % _EVTX_CHUNK:
            # The parser reads a cut file's whole chunks without complaint; the responder must know events are lost.
            whole = (size - _EVTX_HEADER) // _EVTX_CHUNK
            yield f"{path}", None, (f"EVTX file is truncated: it ends inside chunk {whole + 1}, whose events are "
                                    "lost (--skip-bad reads the whole chunks)")
        records = parser.records_json()
        while True:
            try:
                item = next(records)
            except StopIteration:
                return
            except (RuntimeError, OSError, ValueError) as exc:
                # The parser reports a damaged chunk and carries on with the next one: skipping loses that chunk.
                yield f"{path}", None, f"EVTX: {_one_line(exc)} (--skip-bad reads the rest)"
                continue
            yield f"{path}: record {item.get('event_record_id')}", item.get("data"), None

    def event(self, raw: Any) -> WinEvent | None:
        try:
            return json_event(json.loads(raw))
        except (json.JSONDecodeError, TypeError) as exc:
            raise SchemaError(f"EVTX record is not JSON: {exc}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


JSON_LINES = _JsonLines()
EVTX = _Evtx()
read_sysmon_json = reader_for(JSON_LINES)
read_evtx = reader_for(EVTX)
