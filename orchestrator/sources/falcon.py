"""Reads CrowdStrike Falcon events (Event Search JSON/CSV exports, Falcon Data Replicator NDJSON) into schema rows.

Network events name their process only by Falcon's id for it (``ContextProcessId``); image, command line, parent
and hash are in the ProcessRollup2 event whose ``TargetProcessId`` is that id, on the same sensor (``aid``), and
that event may come before or after the connection. So the file is read twice: the first pass keeps the process
facts in a temporary on-disk SQLite table (memory stays bounded whatever the file's size), the second maps each
NetworkConnectIP4/IP6 (outbound), NetworkReceiveAcceptIP4/IP6 (inbound), NetworkListenIP4/IP6 (listener) and
DnsRequest event, looking its process up by (aid, ContextProcessId).

Falcon writes Windows images as ``\\Device\\HarddiskVolumeN\\...`` (kept as written: the drive letter is not in the
event), ``timestamp`` in epoch milliseconds, ``ContextTimeStamp`` in epoch seconds with a fraction, and
``Protocol`` as the IP protocol number.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from orchestrator.schema import SchemaError, normalise_connection, normalise_dns, normalise_listener
from orchestrator.sources.base import Health, OnSkip, Record, blank_to_none, windows_basename
from orchestrator.sources.export import export_items, read_export
from orchestrator.sources.mde import QTYPES
from orchestrator.sources.sysmon import ip_answers

SOURCE = "falcon"
NAME = "falcon"  # --input-format
_CONNECT = {"NetworkConnectIP4": "outbound", "NetworkConnectIP6": "outbound",
            "NetworkReceiveAcceptIP4": "inbound", "NetworkReceiveAcceptIP6": "inbound"}
_LISTEN = {"NetworkListenIP4", "NetworkListenIP6"}
# ConnectionDirection, when present, overrides what the event's name implies: 0 outbound, 1 inbound (2 is "none",
# and anything else unknown, so the name decides).
_DIRECTIONS = {"0": "outbound", "1": "inbound"}
_PROCESS = {"ProcessRollup2", "SyntheticProcessRollup2"}
_DNS = "DnsRequest"
_PROCESS_COLUMNS = ("pid", "image", "command_line", "parent_id", "parent_name", "sha256", "username", "started")
_BATCH = 5000
_RECENT = 4096  # process lookups remembered between events


def sniff(first: Any) -> bool:
    row = first[0] if isinstance(first, list) and first else first
    return isinstance(row, Mapping) and "event_simpleName" in row and ("aid" in row or "ComputerName" in row)


def sniff_csv_header(header: str) -> bool:
    columns = {c.strip().strip('"') for c in header.split(",")}
    return "event_simpleName" in columns and bool(columns & {"aid", "ComputerName"})


def unwrap(value: Any) -> list[Any] | None:
    """Event Search's API answers ``{"resources": [...]}``; an exported event is a row itself."""
    if isinstance(value, Mapping) and "event_simpleName" not in value and isinstance(value.get("resources"), list):
        return value["resources"]
    return None


class ProcessTable:
    """ProcessRollup2 facts by (aid, TargetProcessId), in a temporary SQLite file so a huge export fits."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="connhunt-falcon-")
        self._db = sqlite3.connect(Path(self._dir.name) / "processes.db")
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(f"CREATE TABLE p (aid TEXT, id TEXT, {', '.join(_PROCESS_COLUMNS)}, PRIMARY KEY (aid, id))")
        self._pending: list[tuple[Any, ...]] = []
        self._recent: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.count = 0

    def add(self, event: Mapping[str, Any]) -> None:
        aid, target = event.get("aid"), event.get("TargetProcessId")
        if not aid or not target:
            return
        self._pending.append((str(aid), str(target), _scalar(event.get("RawProcessId")),
                              _text(event.get("ImageFileName")), _text(event.get("CommandLine")),
                              _scalar(event.get("ParentProcessId")), _text(event.get("ParentBaseFileName")),
                              _text(event.get("SHA256HashData")), _text(event.get("UserName")),
                              _scalar(event.get("ProcessStartTime") or event.get("timestamp"))))
        if len(self._pending) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._db.executemany(f"INSERT OR REPLACE INTO p VALUES ({', '.join('?' * 10)})", self._pending)
            self.count += len(self._pending)
            self._pending = []

    def get(self, aid: Any, process_id: Any) -> dict[str, Any] | None:
        if not aid or not process_id:
            return None
        key = (str(aid), str(process_id))
        if key in self._recent:  # a process's events come close together: most lookups repeat a recent one
            return self._recent[key]
        row = self._db.execute(f"SELECT {', '.join(_PROCESS_COLUMNS)} FROM p WHERE aid = ? AND id = ?",
                               key).fetchone()
        if len(self._recent) >= _RECENT:
            self._recent.clear()  # bounded: forget all at once rather than track an LRU order per lookup
        self._recent[key] = dict(zip(_PROCESS_COLUMNS, row)) if row else None
        return self._recent[key]

    def close(self) -> None:
        self._db.close()
        self._dir.cleanup()


def _name(event: Mapping[str, Any]) -> str | None:
    name = event.get("event_simpleName")
    return name if isinstance(name, str) else None


def _scalar(value: Any) -> Any:
    """A value SQLite can hold; anything else (a nested value, an integer past 64 bits) is kept as text, which the
    schema check then rejects where a number was due."""
    if value is None or isinstance(value, (str, float)) or (type(value) is int and -(1 << 63) <= value < (1 << 63)):
        return value
    return str(value)


def _text(value: Any) -> str | None:
    """A text fact of a process (image, command line...); a JSON object or list where text was due is dropped."""
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def read_falcon(path: Path, *, skip_bad: bool = False, on_skip: OnSkip = None) -> Iterator[Record]:
    """Yield (kind, schema row) for each network or DNS event of a Falcon export, joined to its process."""
    table = ProcessTable()
    try:
        for _, item, reason in export_items(path, unwrap):  # pass 1: processes; bad items are reported in pass 2
            if reason is None and isinstance(item, Mapping) and _name(item) in _PROCESS:
                table.add(item)
        table.flush()

        def convert(item: Any, health: Health) -> Iterable[Record]:
            return _convert(item, health, table)

        yield from read_export(path, source=SOURCE, unwrap=unwrap, convert=convert, skip_bad=skip_bad,
                               on_skip=on_skip)
    finally:
        table.close()


def _convert(item: Any, health: Health, table: ProcessTable) -> Iterable[Record]:
    if not isinstance(item, Mapping):
        raise SchemaError(f"expected an event object, got {type(item).__name__}")
    event = blank_to_none(dict(item))
    name = _name(event)
    if not name:
        raise SchemaError("no event_simpleName (text): not a Falcon event")
    aid = event.get("aid")
    host = str(event.get("ComputerName") or aid or "")
    if not host:
        raise SchemaError("no aid or ComputerName: the event names no sensor")
    if name in _PROCESS:
        return []  # read in the first pass
    if name not in _CONNECT and name not in _LISTEN and name != _DNS:
        health.note(host, "falcon_other_events", "Falcon events other than network, DNS and process not read")
        return []
    process = table.get(aid, event.get("ContextProcessId"))
    if process is None:
        health.note(host, "falcon_process_unknown", "network/DNS events whose ProcessRollup2 is not in the export "
                                                    "(owner unknown)")
    parent = table.get(aid, process["parent_id"]) if process else None
    record = _base(event, host, process, parent)
    if name == _DNS:
        record.update({"query": event.get("DomainName"), "qtype": _qtype(event.get("RequestType")),
                       "answers": _records(event.get("IP4Records")) + _records(event.get("IP6Records")),
                       "timestamp": record["first_seen"]})
        if record.get("os") == "windows" and record.get("process_path"):
            # normalise_dns has no os to tell a \Device\... path is Windows's; lower-case it as the connection
            # rows' identity is, so a lookup and the connection it led to share one process identity
            record["process_path"] = record["process_path"].lower()
        return [("dns", normalise_dns({k: v for k, v in record.items() if k in _DNS_KEYS}))]
    ipv6 = name.endswith("IP6")
    record.update({"protocol": event.get("Protocol"), "family": "ipv6" if ipv6 else "ipv4",
                   "local_ip": event.get("LocalAddressIP6" if ipv6 else "LocalAddressIP4"),
                   "local_port": event.get("LocalPort"), "seen_by": "event"})
    if name in _LISTEN:
        return [("listener", normalise_listener(record))]
    record.update({"remote_ip": event.get("RemoteAddressIP6" if ipv6 else "RemoteAddressIP4"),
                   "remote_port": event.get("RemotePort"),
                   "direction": _DIRECTIONS.get(str(event.get("ConnectionDirection")), _CONNECT[name]),
                   # Falcon reports the connect()/accept() call, not whether the handshake completed
                   "state": "NONE"})
    return [("connection", normalise_connection(record))]


_DNS_KEYS = {"host", "host_id", "source", "collected_at", "pid", "process_name", "process_path", "query", "qtype",
             "answers", "timestamp"}


def _base(event: Mapping[str, Any], host: str, process: Mapping[str, Any] | None,
          parent: Mapping[str, Any] | None) -> dict[str, Any]:
    seen = event.get("ContextTimeStamp") or event.get("timestamp")
    record: dict[str, Any] = {"host": host, "host_id": event.get("aid") or host, "source": SOURCE,
                              "collected_at": event.get("timestamp") or seen, "first_seen": seen}
    if process is None:
        record.update({"pid": 0, "attributed": False})
        return record
    image = process["image"]
    windows = isinstance(image, str) and (image.startswith("\\") or image[1:3] == ":\\")
    record.update({"pid": process["pid"], "process_path": image, "process_name": windows_basename(image),
                   "command_line": process["command_line"], "exe_sha256": process["sha256"],
                   "username": process["username"], "process_start": process["started"],
                   "parent_name": process["parent_name"], "os": "windows" if windows else None,
                   "attributed": True, "attribution": "falcon_process_id"})
    if parent is not None:  # ParentProcessId is Falcon's id of the parent, looked up like the process itself
        record.update({"ppid": parent["pid"], "parent_path": parent["image"],
                       "parent_name": windows_basename(parent["image"]) or process["parent_name"]})
    return record


def _qtype(value: Any) -> str | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return str(value) if value is not None else None
    return QTYPES.get(number, str(number))


def _records(value: Any) -> list[str]:
    """IP4Records/IP6Records: the answers' addresses separated by ';' (a trailing one too)."""
    if not isinstance(value, str):
        return []
    return ip_answers(value.split(";"))
