"""Windows events as Winlogbeat or Elastic Agent ship them: ECS documents, one per line (NDJSON).

Winlogbeat keeps the event under ``winlog`` (``event_id``, ``channel``, ``provider_name``, ``computer_name``,
``event_data.*``). Its Sysmon module's ingest pipeline (elastic/beats x-pack/winlogbeat/module/sysmon/ingest/
sysmon.yml) then *moves* most Sysmon fields out of ``winlog.event_data`` into ECS: ``process.executable/pid/
entity_id/command_line/parent.*/hash.sha256``, ``source.ip/port/domain`` and ``destination.*`` (Sysmon's Source*
and Destination* as they were, so for an inbound event ``source`` is still the remote client), ``network.transport``,
``network.direction`` (egress/ingress from Initiated), ``dns.question.name`` and ``dns.resolved_ip``. A document is
read back into Sysmon's own field names, event_data first and ECS where event_data no longer has the field, so the
same mapping serves documents with and without the pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from orchestrator.schema import SchemaError
from orchestrator.sources.windows_events import (
    SYSMON_EVENTS,
    SYSMON_PROVIDER,
    WinEvent,
    event_id,
    host_of,
    json_value,
    line_units,
    reader_for,
)

# Sysmon field <- ECS dotted path, as the Sysmon ingest pipeline renames them
_FROM_ECS = {
    "Image": "process.executable", "ProcessId": "process.pid", "ProcessGuid": "process.entity_id",
    "CommandLine": "process.command_line", "ParentImage": "process.parent.executable",
    "ParentProcessId": "process.parent.pid", "ParentProcessGuid": "process.parent.entity_id",
    "Protocol": "network.transport", "SourceIp": "source.ip", "SourcePort": "source.port",
    "SourceHostname": "source.domain", "DestinationIp": "destination.ip", "DestinationPort": "destination.port",
    "DestinationHostname": "destination.domain", "QueryName": "dns.question.name",
}
_DIRECTION = {"egress": "true", "outbound": "true", "ingress": "false", "inbound": "false"}


def is_winlogbeat_json(first: Any) -> bool:
    return (isinstance(first, Mapping) and isinstance(first.get("winlog"), Mapping)
            and ("event_id" in first["winlog"] or "event_data" in first["winlog"]))


def _get(document: Mapping[str, Any], dotted: str) -> Any:
    """A field by its ECS dotted name, nested ({"process": {"pid"}}) or flattened ({"process.pid"}) as exports do."""
    if dotted in document:
        return document[dotted]
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def winlogbeat_event(value: Any) -> WinEvent:
    if not isinstance(value, Mapping):
        raise SchemaError(f"expected a JSON object, got {type(value).__name__}")
    winlog = value.get("winlog")
    if not isinstance(winlog, Mapping):
        raise SchemaError("no 'winlog' object")
    raw_id = winlog.get("event_id", _get(value, "event.code"))
    number = event_id(raw_id)
    provider = winlog.get("provider_name") or _get(value, "event.provider")
    if isinstance(provider, (Mapping, list)):
        raise SchemaError("field 'winlog.provider_name' must be text")
    host = winlog.get("computer_name") or _get(value, "host.name") or _get(value, "host.hostname")
    event_data = winlog.get("event_data") or {}
    if not isinstance(event_data, Mapping):
        raise SchemaError("'winlog.event_data' must be an object")
    data = dict(event_data)
    if number in SYSMON_EVENTS and (provider in (None, "", SYSMON_PROVIDER)):
        for field, dotted in _FROM_ECS.items():
            if data.get(field) in (None, ""):
                found = _get(value, dotted)
                if found is not None:
                    data[field] = found
        if data.get("Initiated") in (None, ""):
            direction = _get(value, "network.direction")
            if isinstance(direction, str) and direction.lower() in _DIRECTION:
                data["Initiated"] = _DIRECTION[direction.lower()]
        if data.get("DestinationIsIpv6") in (None, "") and _get(value, "network.type") in ("ipv4", "ipv6"):
            data["DestinationIsIpv6"] = "true" if _get(value, "network.type") == "ipv6" else "false"
        sha256 = _get(value, "process.hash.sha256")
        if data.get("Hashes") in (None, "") and isinstance(sha256, str):
            data["Hashes"] = f"SHA256={sha256}"
        resolved = _get(value, "dns.resolved_ip")
        if data.get("QueryResults") in (None, "") and isinstance(resolved, list):
            data["QueryResults"] = ";".join(str(ip) for ip in resolved)
        if data.get("User") in (None, "") and isinstance(_get(value, "user.name"), str):
            domain = _get(value, "user.domain")
            data["User"] = f"{domain}\\{_get(value, 'user.name')}" if isinstance(domain, str) else _get(
                value, "user.name")
    # when Windows logged it: the Sysmon pipeline sets @timestamp to UtcTime and keeps TimeCreated in event.created
    logged = _get(value, "event.created") or winlog.get("time_created") or value.get("@timestamp")
    return WinEvent(number, host_of(host), str(provider) if provider else None, logged, data)


class _Winlogbeat:
    source = "winlogbeat"
    noun = "event"
    markers = ("ParentImage", "parent")  # event_data as Sysmon names it, or ECS process.parent

    def units(self, path: Path) -> Iterator[tuple[str, Any, str | None]]:
        return line_units(path)

    def event(self, raw: Any) -> WinEvent | None:
        return winlogbeat_event(json_value(raw))


WINLOGBEAT = _Winlogbeat()
read_winlogbeat = reader_for(WINLOGBEAT)
