"""Writes windows_scenario Events in each shipper's shape: the fixtures under data/windows/ and bench/ingest's files.

One function per shape, each following the producer's documentation (data/windows/README.md lists where):
``nxlog_line``, ``winlogbeat_line``, ``splunk_json_line``, ``splunk_csv_row`` (after ``SPLUNK_CSV_HEADER``),
``evtxecmd_line``. ``python -m tests.sources.windows_shapes`` rewrites the fixtures from windows_scenario.EVENTS.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.sources.windows_scenario import EVENTS, HOST, SYSMON, Event

FIXTURES = Path(__file__).resolve().parent / "data" / "windows"


def _sysmon(event: Event) -> bool:
    return event.provider == SYSMON


def _logged(event: Event, fraction_digits: int) -> str:
    """TimeCreated as ISO text with a Z, ``fraction_digits`` after the second (Windows writes 7)."""
    text = event.logged.rstrip("Z")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{(fraction + '0' * 9)[:fraction_digits]}" if fraction_digits else whole


def event_xml(event: Event, host: str = HOST) -> str:
    """The event as Windows renders it to XML (what Splunk's XmlWinEventLog _raw holds)."""
    provider, guid, channel = event.provider
    pid, tid = ("3032", "4108") if _sysmon(event) else ("4", "6480")
    keywords = ("0x8000000000000000" if _sysmon(event)
                else "0x8010000000000000" if event.event_id == 5157 else "0x8020000000000000")

    def escape(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&apos;")

    security = "<Security UserID='S-1-5-18'/>" if _sysmon(event) else "<Security/>"
    data = "".join(f"<Data Name='{name}'>{escape(value)}</Data>" if value != "" else f"<Data Name='{name}'/>"
                   for name, value in event.data)
    return (f"<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider "
            f"Name='{provider}' Guid='{guid}'/><EventID>{event.event_id}</EventID><Version>"
            f"{5 if _sysmon(event) else 1}</Version><Level>{4 if _sysmon(event) else 0}</Level><Task>"
            f"{event.event_id if _sysmon(event) else 12810}</Task><Opcode>0</Opcode><Keywords>{keywords}</Keywords>"
            f"<TimeCreated SystemTime='{_logged(event, 7)}Z'/><EventRecordID>{event.record_id}</EventRecordID>"
            f"<Correlation/><Execution ProcessID='{pid}' ThreadID='{tid}'/><Channel>{channel}</Channel>"
            f"<Computer>{host}</Computer>{security}"
            f"</System><EventData>{data}</EventData></Event>")


def nxlog_line(event: Event, host: str = HOST) -> str:
    provider, guid, channel = event.provider
    sysmon = _sysmon(event)
    when = _logged(event, 0).replace("T", " ")  # NXLog's default DateFormat, local time (UTC here)
    record: dict[str, Any] = {
        "EventTime": when, "Hostname": host,
        "Keywords": -9223372036854775808 if sysmon else -9214364837600034816,
        "EventType": "INFO" if sysmon else "AUDIT_FAILURE" if event.event_id == 5157 else "AUDIT_SUCCESS",
        "SeverityValue": 4 if event.event_id == 5157 else 2,
        "Severity": "ERROR" if event.event_id == 5157 else "INFO", "EventID": event.event_id,
        "SourceName": provider, "ProviderGuid": guid, "Version": 5 if sysmon else 1,
        "Task": event.event_id if sysmon else 12810, "OpcodeValue": 0, "RecordNumber": event.record_id,
        "ProcessID": 3032 if sysmon else 4, "ThreadID": 4108 if sysmon else 6480, "Channel": channel}
    if sysmon:
        record.update({"Domain": "NT AUTHORITY", "AccountName": "SYSTEM", "UserID": "S-1-5-18",
                       "AccountType": "User"})
    record.update({"Message": event.message, "Opcode": "Info"})
    for name, value in event.data:
        if name != "ProcessID":  # WFP's field collides with NXLog's own ProcessID, which wins
            record[name] = value
    record.update({"EventReceivedTime": when, "SourceModuleName": "eventlog", "SourceModuleType": "im_msvistalog"})
    return json.dumps(record, ensure_ascii=False)


# Sysmon field -> (ECS path, converter): what x-pack/winlogbeat/module/sysmon/ingest/sysmon.yml renames
_ECS_MOVES: tuple[tuple[str, str, Callable[[str], Any]], ...] = (
    ("ProcessGuid", "process.entity_id", str), ("ProcessId", "process.pid", int),
    ("Image", "process.executable", str), ("CommandLine", "process.command_line", str),
    ("CurrentDirectory", "process.working_directory", str), ("ParentProcessGuid", "process.parent.entity_id", str),
    ("ParentProcessId", "process.parent.pid", int), ("ParentImage", "process.parent.executable", str),
    ("ParentCommandLine", "process.parent.command_line", str), ("Protocol", "network.transport", str),
    ("DestinationPortName", "network.protocol", str), ("SourcePortName", "network.protocol", str),
    ("SourceIp", "source.ip", str), ("SourceHostname", "source.domain", str), ("SourcePort", "source.port", int),
    ("DestinationIp", "destination.ip", str), ("DestinationHostname", "destination.domain", str),
    ("DestinationPort", "destination.port", int), ("QueryName", "dns.question.name", str),
)


def _put(document: dict[str, Any], dotted: str, value: Any) -> None:
    node = document
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def winlogbeat_line(event: Event, host: str = HOST) -> str:
    provider, guid, channel = event.provider
    data = dict(event.data)
    sysmon = _sysmon(event)
    created = _logged(event, 3) + "Z"
    document: dict[str, Any] = {
        "@timestamp": created, "agent": {"type": "winlogbeat", "version": "8.15.0", "name": host.split(".")[0]},
        "ecs": {"version": "8.0.0"},
        "host": {"name": host.lower(), "hostname": host.split(".")[0].lower(),
                 "os": {"family": "windows", "type": "windows"}},
        "log": {"level": "information"}, "message": event.message,
        "event": {"code": str(event.event_id), "created": created, "kind": "event", "provider": provider}}
    winlog: dict[str, Any] = {
        "channel": channel, "computer_name": host, "event_id": str(event.event_id), "provider_guid": guid,
        "provider_name": provider, "record_id": str(event.record_id), "opcode": "Info", "api": "wineventlog",
        "process": {"pid": 3032 if sysmon else 4, "thread": {"id": 4108 if sysmon else 6480}}}
    if sysmon:
        remaining = {k: v for k, v in data.items() if v not in ("", "-") and k != "RuleName"}
        if "UtcTime" in remaining:
            document["@timestamp"] = remaining["UtcTime"].replace(" ", "T") + "Z"
        for field, dotted, convert in _ECS_MOVES:
            if field in remaining:
                _put(document, dotted, convert(remaining.pop(field)))
        if "Hashes" in remaining:
            hashes = dict(part.split("=", 1) for part in remaining["Hashes"].split(","))
            _put(document, "process.hash", {k.lower(): v.lower() for k, v in hashes.items() if k != "IMPHASH"})
            if "IMPHASH" in hashes:
                _put(document, "process.pe.imphash", hashes["IMPHASH"].lower())
        if "executable" in document.get("process", {}):
            document["process"]["name"] = document["process"]["executable"].rsplit("\\", 1)[-1]
        if event.event_id == 3:
            _put(document, "network.direction", "egress" if data["Initiated"] == "true" else "ingress")
            _put(document, "network.type", "ipv6" if data.get("SourceIsIpv6") == "true" else "ipv4")
        if event.event_id == 22:
            _put(document, "network.protocol", "dns")
            addresses = [a.replace("::ffff:", "") for a in data.get("QueryResults", "").split(";")
                         if a and not a.startswith("type:")]
            _put(document, "dns.resolved_ip", addresses)
            _put(document, "dns.answers", [{"type": "AAAA" if ":" in a else "A", "data": a} for a in addresses])
        if "\\" in data.get("User", ""):
            domain, name = data["User"].split("\\", 1)
            document["user"] = {"domain": domain, "name": name, "id": "S-1-5-18"}
        document["event"]["module"] = "sysmon"
        winlog["event_data"] = remaining
    else:
        document["event"].update({
            "action": "windows-firewall-bind" if event.event_id == 5158 else "windows-firewall-connection",
            "outcome": "failure" if event.event_id == 5157 else "success", "module": "security"})
        winlog["event_data"] = data
        winlog["keywords"] = ["Audit Failure" if event.event_id == 5157 else "Audit Success"]
    document["winlog"] = winlog
    return json.dumps(document, ensure_ascii=False)


def _splunk_result(event: Event, serial: int, host: str) -> dict[str, Any]:
    channel = event.provider[2]
    return {"_bkt": "wineventlog~12~6F3C2B1A-0D4E-4A5B-9C8D-7E6F5A4B3C2D", "_cd": f"12:{4400 + serial}",
            "_indextime": "1795489300", "_raw": event_xml(event, host), "_serial": str(serial),
            "_si": ["idx-1", "wineventlog"], "_sourcetype": "XmlWinEventLog",
            "_time": _logged(event, 3) + "+00:00", "host": host.split(".")[0], "index": "wineventlog",
            "linecount": "1", "source": f"XmlWinEventLog:{channel}", "sourcetype": "XmlWinEventLog",
            "splunk_server": "idx-1"}


def splunk_json_line(event: Event, serial: int, host: str = HOST, *, last: bool = False) -> str:
    line: dict[str, Any] = {"preview": False, "offset": serial, "result": _splunk_result(event, serial, host)}
    if last:
        line["lastrow"] = True
    return json.dumps(line, ensure_ascii=False)


SPLUNK_CSV_COLUMNS = ("_serial", "_time", "source", "sourcetype", "host", "index", "splunk_server", "_raw")
SPLUNK_CSV_HEADER = ",".join(f'"{name}"' for name in SPLUNK_CSV_COLUMNS) + "\n"


def splunk_csv_row(event: Event, serial: int, host: str = HOST) -> str:
    result = _splunk_result(event, serial, host)
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow([result[c] for c in SPLUNK_CSV_COLUMNS])
    return out.getvalue()


def evtxecmd_line(event: Event, host: str = HOST) -> str:
    provider, _guid, channel = event.provider
    data = [{"@Name": name, "#text": value} if value != "" else {"@Name": name} for name, value in event.data]
    fields = dict(event.data)
    sysmon = _sysmon(event)
    source = "C:\\Triage\\" + host.split(".")[0] + (
        "\\Microsoft-Windows-Sysmon%4Operational.evtx" if sysmon else "\\Security.evtx")
    record = {
        "PayloadData1": f"ProcessID: {fields.get('ProcessId') or fields.get('ProcessID')}", "PayloadData2": "",
        "MapDescription": "", "ChunkNumber": 0, "Computer": host,
        "Payload": json.dumps({"EventData": {"Data": data}}, ensure_ascii=False, separators=(",", ":")),
        "UserId": "S-1-5-18" if sysmon else "", "Channel": channel, "Provider": provider,
        "EventId": event.event_id, "EventRecordId": str(event.record_id), "ProcessId": 3032 if sysmon else 4,
        "ThreadId": 4108 if sysmon else 6480, "Level": "Info" if sysmon else "LogAlways",
        "Keywords": "Classic" if sysmon else ("Audit failure" if event.event_id == 5157 else "Audit success"),
        "SourceFile": source, "ExtraDataOffset": 0, "HiddenRecord": False,
        "TimeCreated": _logged(event, 7) + "+00:00", "RecordNumber": event.record_id}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def write_fixtures(events: Sequence[Event] = EVENTS, folder: Path = FIXTURES) -> None:
    newest_first = list(reversed(events))  # a Splunk search returns the newest event first
    (folder / "nxlog.jsonl").write_text("".join(nxlog_line(e) + "\n" for e in events))
    (folder / "winlogbeat.ndjson").write_text("".join(winlogbeat_line(e) + "\n" for e in events))
    (folder / "splunk_results.json").write_text("".join(
        splunk_json_line(e, i, last=i == len(newest_first) - 1) + "\n" for i, e in enumerate(newest_first)))
    (folder / "splunk_export.csv").write_text(SPLUNK_CSV_HEADER + "".join(
        splunk_csv_row(e, i) for i, e in enumerate(newest_first)))
    # EvtxECmd run over the Sysmon log, then the Security log: one file after the other
    by_log = sorted(events, key=lambda e: (not _sysmon(e), e.record_id))
    (folder / "evtxecmd.json").write_text("".join(evtxecmd_line(e) + "\n" for e in by_log))


if __name__ == "__main__":
    write_fixtures()
