"""Reads Sysmon network (Event ID 3) and DNS (Event ID 22) events into schema rows, from .evtx or JSON lines.

One event can arrive in four shapes, all read by ``event_row``:
- ``{"Event": {"System": ..., "EventData": ...}}``: the `evtx` package's ``records_json()`` and ``evtx_dump -o jsonl``
  (attributes under ``"#attributes"``, or ``"<Name>_attributes"`` with ``--separate-json-attributes``);
- ``{"System": ..., "EventData": ..., "Message": ...}``: Velociraptor's ``parse_evtx()``
  (``System.EventID.Value``, ``System.TimeCreated.SystemTime`` in epoch seconds);
- ``{"EventTime", "Computer", "Provider", "EventID", "EventData", ...}``: Velociraptor's Windows.EventLogs.EvtxHunter.

Only Initiated=true Event ID 3 events are connections this host opened; accepted (inbound) ones are counted in a
health row, not read. QueryResults of Event ID 22 (``type:  5 cdn.example.net;::ffff:192.0.2.7;``) become the
answers' IP addresses; CNAME and other non-address entries (``type: N name``) are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError
from orchestrator.schema import SchemaError, canonical_ip, normalise_connection, normalise_dns
from orchestrator.sources.base import (
    BadInput,
    Health,
    OnSkip,
    Record,
    as_bool,
    json_lines,
    open_input,
    windows_basename,
)

SOURCE = "sysmon"
EVTX_MAGIC = b"ElfFile\x00"
# An EVTX file is a 4 KiB header then whole 64 KiB chunks (libyal's EVTX format notes); anything else was cut short.
_EVTX_HEADER, _EVTX_CHUNK = 4096, 65536
SYSMON_PROVIDER = "Microsoft-Windows-Sysmon"
# QueryStatus is a Windows error number; these are the DNS outcomes spelled as DNS spells them.
_DNS_STATUS = {"0": "NOERROR", "9002": "SERVFAIL", "9003": "NXDOMAIN", "9501": "NODATA", "9701": "NODATA",
               "1460": "TIMEOUT", "123": "INVALID_NAME"}


def is_sysmon_json(first: Any) -> bool:
    """Whether the first JSON value of a file is a Windows event in one of the shapes ``event_row`` reads."""
    if not isinstance(first, Mapping):
        return False
    if isinstance(first.get("data"), str) and "event_record_id" in first:
        return True
    event = first.get("Event", first)
    return isinstance(event, Mapping) and (
        (isinstance(event.get("System"), Mapping) and "EventID" in event["System"])
        or ("EventID" in event and "EventData" in event))


def read_sysmon_json(path: Path, *, skip_bad: bool = False, on_skip: OnSkip = None) -> Iterator[Record]:
    """Yield (kind, schema row) for each Sysmon 3/22 event of a JSON-lines export."""
    bad = BadInput(skip_bad, on_skip)
    health = Health(SOURCE)
    handle = open_input(path, "a JSON-lines file of events")
    seen_any = False
    with handle:
        for number, value, reason in json_lines(handle):
            seen_any = True
            if reason is not None:
                bad(f"{path}:{number}", reason)
                continue
            try:
                record = event_row(value, health)
            except SchemaError as exc:
                bad(f"{path}:{number}", exc)
                continue
            if record is not None:
                yield record
    if not seen_any:
        raise InputError(f"{path}: empty file, no records")
    yield from health.records()


def read_evtx(path: Path, *, skip_bad: bool = False, on_skip: OnSkip = None) -> Iterator[Record]:
    """Yield (kind, schema row) for each Sysmon 3/22 event of an .evtx file, parsed by the `evtx` package."""
    from evtx import PyEvtxParser  # imported here: only .evtx input needs the Rust extension

    bad = BadInput(skip_bad, on_skip)
    health = Health(SOURCE)
    try:
        parser = PyEvtxParser(str(path))
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputError(f"{path}: not a readable EVTX file: {_one_line(exc)}") from None
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None
    if size > _EVTX_HEADER and (size - _EVTX_HEADER) % _EVTX_CHUNK:
        # The parser reads a cut file's whole chunks without complaint; the responder must know events are missing.
        whole = (size - _EVTX_HEADER) // _EVTX_CHUNK
        bad(f"{path}", f"EVTX file is truncated: it ends inside chunk {whole + 1}, whose events are lost"
                       + ("" if skip_bad else " (--skip-bad reads the whole chunks)"))
    records = parser.records_json()
    read_any = False
    while True:
        try:
            item = next(records)
        except StopIteration:
            break
        except (RuntimeError, OSError, ValueError) as exc:
            # The parser reports a damaged chunk and carries on with the next one, so skipping loses that chunk only.
            bad(f"{path}", f"EVTX: {_one_line(exc)}" + ("" if skip_bad else " (--skip-bad reads the rest)"))
            continue
        read_any = True
        where = f"{path}: record {item.get('event_record_id')}"
        try:
            record = event_row(json.loads(item["data"]), health)
        except (SchemaError, json.JSONDecodeError, KeyError, TypeError) as exc:
            bad(where, exc)
            continue
        if record is not None:
            yield record
    if not read_any:
        raise InputError(f"{path}: EVTX file holds no readable event records")
    yield from health.records()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def event_row(value: Any, health: Health) -> Record | None:
    """A schema record for a Sysmon Event ID 3 or 22 in any shape this module reads; None for other events."""
    if not isinstance(value, Mapping):
        raise SchemaError(f"expected a JSON object, got {type(value).__name__}")
    if isinstance(value.get("data"), str) and "event_record_id" in value:  # a records_json() item saved as a line
        try:
            value = json.loads(value["data"])
        except json.JSONDecodeError as exc:
            raise SchemaError(f"'data' is not JSON: {exc.msg}") from None
    event = value.get("Event", value)
    if not isinstance(event, Mapping):
        raise SchemaError("'Event' must be an object")
    system = event.get("System")
    if isinstance(system, Mapping):
        event_id = _event_id(system.get("EventID"))
        computer = system.get("Computer")
        provider = _attr(system, "Provider", "Name")
        logged = _attr(system, "TimeCreated", "SystemTime")
    else:  # EvtxHunter rows: System already flattened
        event_id = _event_id(event.get("EventID"))
        computer = event.get("Computer")
        provider = event.get("Provider")
        logged = event.get("EventTime")
    if event_id is None:
        raise SchemaError("no EventID")
    host = str(computer or "")
    if not host:
        raise SchemaError("no Computer (System.Computer): the event names no host")
    if provider and provider != SYSMON_PROVIDER:
        health.note(host, "not_sysmon", "events of other providers not read")
        return None
    if event_id not in (3, 22):
        health.note(host, "other_sysmon_events", "Sysmon events other than 3 (network) and 22 (DNS) not read")
        return None
    data = _event_data(event.get("EventData"))
    if event_id == 3:
        return _connection(data, host, logged, health)
    return _dns(data, host, logged)


def _event_id(value: Any) -> int | None:
    if isinstance(value, Mapping):  # {"#text": 3, "#attributes": {...}} or Velociraptor's {"Value": 3}
        value = value.get("#text", value.get("Value"))
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        raise SchemaError(f"EventID is not a number: {value!r}") from None


def _attr(system: Mapping[str, Any], element: str, name: str) -> Any:
    """An XML attribute of a System element in the evtx crate's spelling or Velociraptor's."""
    node = system.get(element)
    if isinstance(node, Mapping):
        attributes = node.get("#attributes", node)
        if isinstance(attributes, Mapping) and name in attributes:
            return attributes[name]
    separate = system.get(f"{element}_attributes")  # evtx_dump --separate-json-attributes
    return separate.get(name) if isinstance(separate, Mapping) else None


def _event_data(value: Any) -> Mapping[str, Any]:
    if value is None:
        raise SchemaError("no EventData")
    if not isinstance(value, Mapping):
        raise SchemaError("'EventData' must be an object")
    items = value.get("Data")
    if isinstance(items, list):
        # <Data Name="..."> elements left as a list: {"#attributes": {"Name"}, "#text"} from the evtx crate, or
        # {"Name", "Value"} from Velociraptor, when they could not fold them into one object
        flat = {}
        for item in items:
            if isinstance(item, Mapping) and isinstance(item.get("#attributes"), Mapping):
                flat[str(item["#attributes"].get("Name"))] = item.get("#text")
            elif isinstance(item, Mapping) and "Name" in item:
                flat[str(item["Name"])] = item.get("Value")
        return flat
    return value


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None or value in ("", "-") else str(value)  # Sysmon writes "-" for "none"


def _connection(data: Mapping[str, Any], host: str, logged: Any, health: Health) -> Record | None:
    initiated = as_bool(data.get("Initiated"))
    if initiated is None:
        raise SchemaError(f"field 'Initiated' must be true or false, got {data.get('Initiated')!r}")
    if not initiated:
        health.note(host, "sysmon_inbound", "accepted (Initiated=false) Sysmon connections not read")
        return None
    image = _text(data, "Image")
    ipv6 = as_bool(data.get("DestinationIsIpv6"))
    protocol = _text(data, "Protocol")
    seen = _text(data, "UtcTime") or logged
    record = {
        "host": host, "os": "windows", "source": SOURCE, "collected_at": logged or seen,
        "pid": data.get("ProcessId"), "process_name": windows_basename(image), "process_path": image,
        "username": _text(data, "User"), "protocol": protocol,
        "family": None if ipv6 is None else ("ipv6" if ipv6 else "ipv4"),
        "local_ip": _text(data, "SourceIp"), "local_port": data.get("SourcePort"),
        "remote_ip": _text(data, "DestinationIp"), "remote_port": data.get("DestinationPort"),
        # Sysmon logs a TCP connection once it is made; UDP has no state.
        "state": "ESTABLISHED" if (protocol or "").lower() == "tcp" else "NONE",
        "first_seen": seen, "last_seen": seen, "remote_hostname": _text(data, "DestinationHostname"),
        "direction": "outbound", "seen_by": "event",
    }
    return "connection", normalise_connection(record)


def _dns(data: Mapping[str, Any], host: str, logged: Any) -> Record:
    image = _text(data, "Image")
    status = _text(data, "QueryStatus")
    record = {
        "host": host, "source": SOURCE, "collected_at": logged or _text(data, "UtcTime"),
        "pid": data.get("ProcessId"), "process_name": windows_basename(image), "process_path": image,
        "query": _text(data, "QueryName"), "answers": query_answers(_text(data, "QueryResults") or ""),
        "response_code": _DNS_STATUS.get(status or "", status), "timestamp": _text(data, "UtcTime") or logged,
    }
    return "dns", normalise_dns(record)


def query_answers(text: str) -> list[str]:
    """The IP addresses of a Windows DNS client QueryResults string; ``type: N name`` entries (CNAME...) dropped."""
    return ip_answers(entry for entry in text.split(";") if not entry.strip().lower().startswith("type:"))


def ip_answers(entries: Iterable[Any]) -> list[str]:
    """The entries that are IP addresses, in canonical form (``::ffff:192.0.2.7`` is 192.0.2.7)."""
    answers = []
    for entry in entries:
        try:
            answer = canonical_ip(str(entry).strip()) if entry is not None else ""
        except SchemaError:
            continue  # a name where an address was expected: not an answer connhunt can match on
        if answer:
            answers.append(answer)
    return answers
