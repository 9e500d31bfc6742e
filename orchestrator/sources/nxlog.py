"""Windows events as NXLog's ``to_json()`` writes them (im_msvistalog input): one flat JSON object per line.

NXLog puts the System fields under its own names (``EventID``, ``SourceName`` for the provider, ``Hostname`` for
Computer, ``EventTime``) and every EventData field at the top level beside them (``Image``, ``DestinationIp``,
``Initiated``...), as its im_msvistalog reference describes. Two consequences handled here:
- NXLog's own ``ProcessID`` is the event producer's (System/Execution/@ProcessID, 4 for Security events). WFP events
  name their process in an EventData field also called ``ProcessID``, which collides with it, so for WFP the pid is
  taken from the rendered ``Message`` ("Process ID: 4556") when it is there. Sysmon's ``ProcessId`` (lower-case d)
  does not collide.
- ``EventTime`` is local time without an offset unless NXLog's DateFormat says otherwise; a time without an offset
  is read as UTC (Sysmon's ``UtcTime`` is used first where the event has it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from orchestrator.schema import SchemaError
from orchestrator.sources.windows_events import (
    WFP_EVENTS,
    WinEvent,
    event_id,
    host_of,
    json_value,
    line_units,
    reader_for,
)

_MESSAGE_PID = re.compile(r"Process ID:\s*(\d+|0x[0-9a-fA-F]+)")


def is_nxlog_json(first: Any) -> bool:
    """An NXLog event: EventID and SourceName beside each other at the top level, no nested System/EventData."""
    return (isinstance(first, Mapping) and "EventID" in first and "SourceName" in first
            and ("Hostname" in first or "EventTime" in first) and "EventData" not in first and "System" not in first)


def nxlog_event(value: Any) -> WinEvent:
    if not isinstance(value, Mapping):
        raise SchemaError(f"expected a JSON object, got {type(value).__name__}")
    number = event_id(value.get("EventID"))
    data: Mapping[str, Any] = value
    if number in WFP_EVENTS:
        message = value.get("Message")
        found = _MESSAGE_PID.search(message) if isinstance(message, str) else None
        if found:
            data = {**value, "ProcessID": found.group(1)}
    provider = value.get("SourceName")
    if isinstance(provider, (Mapping, list)):
        raise SchemaError("field 'SourceName' must be text")
    return WinEvent(number, host_of(value.get("Hostname")), str(provider) if provider else None,
                    value.get("EventTime"), data)


class _Nxlog:
    source = "nxlog"
    noun = "event"
    markers = ("ParentImage",)

    def units(self, path: Path) -> Iterator[tuple[str, Any, str | None]]:
        return line_units(path)

    def event(self, raw: Any) -> WinEvent | None:
        return nxlog_event(json_value(raw))


NXLOG = _Nxlog()
read_nxlog = reader_for(NXLOG)
