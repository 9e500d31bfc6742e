"""Reads Microsoft Defender for Endpoint advanced-hunting exports: DeviceNetworkEvents and DNS from DeviceEvents.

Rows come as the portal's CSV export, JSON lines or a JSON array of rows, the advanced-hunting API response
(``{"Schema": [...], "Results": [...]}``, ``results`` in the Graph API) or the streaming API's Event Hub/storage
form (``{"records": [{"category": "AdvancedHunting-DeviceNetworkEvents", "properties": {...}}]}``). Column names
are the tables' own (learn.microsoft.com, "DeviceNetworkEvents table in the advanced hunting schema").

ActionType decides the row: ConnectionSuccess/ConnectionFailed/ConnectionAttempt/ConnectionRequest are this host
connecting out, InboundConnectionAccepted a client reaching one of its listeners (direction inbound),
ListeningConnectionCreated a listener row, ConnectionFound a connection seen already open (direction unknown).
DeviceEvents rows with ActionType DnsQueryResponse carry the query in ``AdditionalFields`` (DnsQueryString,
DnsQueryType, and the answers in DnsQueryResult).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orchestrator.schema import SchemaError, normalise_connection, normalise_dns, normalise_listener
from orchestrator.sources.base import Health, OnSkip, Record, blank_to_none, windows_basename
from orchestrator.sources.export import first_record, read_export
from orchestrator.sources.sysmon import ip_answers

SOURCE = "mde"
NAME = "mde"  # --input-format
# ActionType -> (direction, TCP state). A failed or merely attempted connection never completed its handshake:
# SYN_SENT is the half-open state the scan detector counts.
_CONNECTION_ACTIONS = {
    "ConnectionSuccess": ("outbound", "ESTABLISHED"),
    "ConnectionFailed": ("outbound", "SYN_SENT"),
    "ConnectionAttempt": ("outbound", "SYN_SENT"),
    "ConnectionRequest": ("outbound", "SYN_SENT"),
    "ConnectionAcknowledged": ("outbound", "ESTABLISHED"),
    "ConnectionFound": ("unknown", "ESTABLISHED"),
    "InboundConnectionAccepted": ("inbound", "ESTABLISHED"),
}
_LISTENING = "ListeningConnectionCreated"
_DNS = "DnsQueryResponse"
# DNS RR type numbers as DnsQueryType carries them (IANA registry)
QTYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV", 64: "SVCB",
          65: "HTTPS", 255: "ANY"}
# Protocol is spelled Tcp, Udp, TcpV4, TcpV6, UdpV6, Icmp, IcmpV6...: the family suffix is not the transport.
_FAMILY_SUFFIX = re.compile(r"v[46]$", re.IGNORECASE)


def sniff(first: Any) -> bool:
    """Whether the first record of a file is an advanced-hunting row (or an API response wrapping rows)."""
    row = _first_row(first)
    return isinstance(row, Mapping) and "ActionType" in row and ("DeviceName" in row or "DeviceId" in row)


def sniff_csv_header(header: str) -> bool:
    columns = {c.strip().strip('"') for c in header.split(",")}
    return {"ActionType", "DeviceName"} <= columns and bool(columns & {"RemoteIP", "AdditionalFields", "LocalIP"})


def _first_row(first: Any) -> Any:
    row = first_record(first, unwrap)
    return row["properties"] if isinstance(row, Mapping) and isinstance(row.get("properties"), Mapping) else row


def unwrap(value: Any) -> list[Any] | None:
    """The rows of an API response or a streaming-API batch; None when ``value`` is a row itself."""
    if not isinstance(value, Mapping):
        return None
    for key in ("Results", "results", "records"):
        if key in value and "ActionType" not in value:
            rows = value[key]
            if not isinstance(rows, list):
                raise SchemaError(f"{key!r} must be a list of rows")
            return rows
    return None


def read_mde(path: Path, *, skip_bad: bool = False, on_skip: OnSkip = None) -> Iterator[Record]:
    """Yield (kind, schema row) for each network or DNS row of a Defender for Endpoint export."""
    return read_export(path, source=SOURCE, unwrap=unwrap, convert=convert, skip_bad=skip_bad, on_skip=on_skip)


def convert(item: Any, health: Health) -> Iterable[Record]:
    if not isinstance(item, Mapping):
        raise SchemaError(f"expected a row object, got {type(item).__name__}")
    if isinstance(item.get("properties"), Mapping):  # streaming API: the row is under properties
        item = item["properties"]
    row = blank_to_none(dict(item))
    action = row.get("ActionType")
    if not action or not isinstance(action, str):
        raise SchemaError("no ActionType (text): not an advanced-hunting row")
    host = row.get("DeviceName")
    if not host:
        raise SchemaError("no DeviceName: the row names no device")
    host = str(host).lower()  # DeviceName is the FQDN, in lower case in most exports: one spelling per host
    if action in _CONNECTION_ACTIONS or action == _LISTENING:
        return [_socket(row, str(action), host)]
    if action == _DNS:
        return [_dns(row, host)]
    health.note(host, "mde_other_actions", "ActionTypes other than connections, listeners and DnsQueryResponse "
                                           "not read")
    return []


def _process(row: Mapping[str, Any], host: str) -> dict[str, Any]:
    """Host, time and initiating-process fields every row shares, in the schema's names."""
    name = row.get("InitiatingProcessFileName")
    folder = row.get("InitiatingProcessFolderPath")
    path = _image_path(folder, name)
    domain, account = row.get("InitiatingProcessAccountDomain"), row.get("InitiatingProcessAccountName")
    windows = isinstance(path, str) and (path[1:3] == ":\\" or path.startswith("\\\\"))
    return {
        "host": host, "host_id": row.get("DeviceId"), "source": SOURCE,
        "os": "windows" if windows else None, "collected_at": row.get("Timestamp"),
        "first_seen": row.get("Timestamp"), "pid": row.get("InitiatingProcessId"),
        "ppid": row.get("InitiatingProcessParentId"), "process_name": name or windows_basename(path),
        "process_path": path, "command_line": row.get("InitiatingProcessCommandLine"),
        "username": f"{domain}\\{account}" if domain and account else account,
        "process_start": row.get("InitiatingProcessCreationTime"),
        "parent_name": row.get("InitiatingProcessParentFileName"), "exe_sha256": row.get("InitiatingProcessSHA256"),
    }


def _image_path(folder: Any, name: Any) -> str | None:
    """InitiatingProcessFolderPath holds the image's full path in practice; join the name when it is a folder."""
    if not folder:
        return None
    folder, name = str(folder), str(name or "")
    if not name or folder.lower().rstrip("\\/").endswith(name.lower()):
        return folder
    separator = "\\" if "\\" in folder else "/"
    return folder.rstrip("\\/") + separator + name


def _protocol(value: Any) -> str | None:
    return _FAMILY_SUFFIX.sub("", str(value)).lower() if value else None


def _socket(row: Mapping[str, Any], action: str, host: str) -> Record:
    record = {**_process(row, host), "protocol": _protocol(row.get("Protocol")), "local_ip": row.get("LocalIP"),
              "local_port": row.get("LocalPort"), "seen_by": "event"}
    if action == _LISTENING:
        return "listener", normalise_listener(record)
    direction, state = _CONNECTION_ACTIONS[action]
    record.update({"remote_ip": row.get("RemoteIP"), "remote_port": row.get("RemotePort"),
                   "remote_hostname": remote_host(row.get("RemoteUrl")), "direction": direction,
                   "state": state if record["protocol"] == "tcp" else "NONE"})
    if action == "ConnectionFound":
        record["seen_by"] = "snapshot"  # found already open by a scan, not reported as it opened
    return "connection", normalise_connection(record)


def remote_host(url: Any) -> str | None:
    """The host name of RemoteUrl, which holds a bare name, or a URL with scheme, port and path."""
    if not url:
        return None
    text = str(url).strip()
    if "://" in text:
        try:
            return urlsplit(text).hostname
        except ValueError:
            return None
    text = text.split("/", 1)[0]
    return (text.rsplit(":", 1)[0] if text.count(":") == 1 else text).lower() or None


def _dns(row: Mapping[str, Any], host: str) -> Record:
    fields = _additional_fields(row.get("AdditionalFields"))
    query = fields.get("DnsQueryString")
    if not query:
        raise SchemaError("DnsQueryResponse without AdditionalFields.DnsQueryString")
    qtype = fields.get("DnsQueryType")
    process = _process(row, host)
    record = {key: process[key] for key in ("host", "host_id", "source", "collected_at", "pid", "process_name",
                                            "process_path")}
    record.update({"query": query, "qtype": QTYPES.get(qtype, str(qtype)) if isinstance(qtype, int) else qtype,
                   "answers": dns_answers(fields.get("DnsQueryResult")), "timestamp": row.get("Timestamp")})
    return "dns", normalise_dns(record)


def _additional_fields(value: Any) -> Mapping[str, Any]:
    """AdditionalFields is a JSON object, or (in CSV and most JSON exports) that object as text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"AdditionalFields is not JSON: {exc.msg}") from None
    if not isinstance(value, Mapping):
        raise SchemaError("AdditionalFields must be a JSON object")
    return value


def dns_answers(value: Any) -> list[str]:
    """The IP addresses in DnsQueryResult: a list (or its JSON text) of answer objects or of addresses."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return ip_answers(value.replace(",", ";").split(";"))
    if not isinstance(value, list):
        return []
    entries: list[Any] = []
    for answer in value:
        if isinstance(answer, Mapping):
            entries.extend(v for k, v in answer.items() if "address" in k.lower() or k.lower() in ("ip", "data"))
        else:
            entries.append(answer)
    return ip_answers(entries)
