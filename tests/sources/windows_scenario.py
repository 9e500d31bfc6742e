"""One small Windows incident, as Sysmon and the Security log record it, for the shipper-shape tests.

WS-9 runs C:\\Users\\Public\\beacon.exe (Sysmon 1), which resolves and calls 203.0.113.77:8443 (Sysmon 22 and 3, and
the same connection as WFP 5156), is blocked calling 198.51.100.99:4444 (5157) and pings out (5156, protocol 1);
FS-2 reaches WS-9's SMB (Sysmon 3, Initiated=false) and RDP (5156 inbound); nc.exe binds 5555 from a volume no
Sysmon event names (5158). ``EVENTS`` is in TimeCreated order, as a shipper sends them; every fixture under
data/windows/ holds exactly these events in its producer's shape (data/windows/README.md says where each shape is
documented), so all of them must read to ``expected_rows()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

HOST = "WS-9.corp.example"
SYSMON = ("Microsoft-Windows-Sysmon", "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}", "Microsoft-Windows-Sysmon/Operational")
SECURITY = ("Microsoft-Windows-Security-Auditing", "{54849625-5478-4994-A5BA-3E3B0328C30D}", "Security")
BEACON = "C:\\Users\\Public\\beacon.exe"
BEACON_GUID = "{4b1d9c2e-7a10-6742-1c04-000000003100}"
BEACON_SHA256 = "9f2c4e6a8b0d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a"


@dataclass(frozen=True)
class Event:
    record_id: int
    logged: str  # System/TimeCreated/@SystemTime, UTC, whole seconds so that every shipper keeps it exactly
    provider: tuple[str, str, str]
    event_id: int
    data: tuple[tuple[str, str], ...]
    message: str = ""  # as Windows renders it (nxlog and Winlogbeat ship it)

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.logged.replace("Z", "+00:00"))


def _wfp_message(verb: str, data: dict[str, str]) -> str:
    return (f"The Windows Filtering Platform has {verb} a connection.\n\nApplication Information:\n"
            f"\tProcess ID:\t\t{data['ProcessID']}\n\tApplication Name:\t{data['Application']}\n\n"
            f"Network Information:\n\tDirection:\t\t{'Inbound' if data['Direction'] == '%%14592' else 'Outbound'}\n"
            f"\tSource Address:\t\t{data['SourceAddress']}\n\tSource Port:\t\t{data['SourcePort']}\n"
            f"\tDestination Address:\t{data['DestAddress']}\n\tDestination Port:\t\t{data['DestPort']}\n"
            f"\tProtocol:\t\t{data['Protocol']}\n")


def _wfp(record_id: int, logged: str, event_id: int, **fields: str) -> Event:
    data = {"ProcessID": fields["pid"], "Application": fields["app"], "Direction": fields["direction"],
            "SourceAddress": fields["src"], "SourcePort": fields["sport"], "DestAddress": fields["dst"],
            "DestPort": fields["dport"], "Protocol": fields["proto"], "FilterRTID": "70201",
            "LayerName": "%%14611", "LayerRTID": "48", "RemoteUserID": "S-1-0-0", "RemoteMachineID": "S-1-0-0"}
    verb = "permitted" if event_id == 5156 else "blocked"
    return Event(record_id, logged, SECURITY, event_id, tuple(data.items()), _wfp_message(verb, data))


def _sysmon3(record_id: int, logged: str, **f: str) -> Event:
    data = (("RuleName", "-"), ("UtcTime", f["utc"]), ("ProcessGuid", f["guid"]), ("ProcessId", f["pid"]),
            ("Image", f["image"]), ("User", f["user"]), ("Protocol", "tcp"), ("Initiated", f["initiated"]),
            ("SourceIsIpv6", "false"), ("SourceIp", f["src"]), ("SourceHostname", f["src_host"]),
            ("SourcePort", f["sport"]), ("SourcePortName", "-"), ("DestinationIsIpv6", "false"),
            ("DestinationIp", f["dst"]), ("DestinationHostname", f["dst_host"]), ("DestinationPort", f["dport"]),
            ("DestinationPortName", f["dport_name"]))
    return Event(record_id, logged, SYSMON, 3, data, "Network connection detected:\n" + "\n".join(
        f"{name}: {value}" for name, value in data))


EVENTS: tuple[Event, ...] = (
    Event(501, "2026-11-23T03:00:00Z", SYSMON, 1, (
        ("RuleName", "-"), ("UtcTime", "2026-11-23 03:00:00.100"), ("ProcessGuid", BEACON_GUID),
        ("ProcessId", "7312"), ("Image", BEACON), ("FileVersion", "-"), ("Description", "-"), ("Product", "-"),
        ("Company", "-"), ("OriginalFileName", "-"), ("CommandLine", f"{BEACON} -c 203.0.113.77"),
        ("CurrentDirectory", "C:\\Users\\Public\\"), ("User", "CORP\\alice"),
        ("LogonGuid", "{4b1d9c2e-0001-6742-e703-000000000000}"), ("LogonId", "0x3e7"), ("TerminalSessionId", "1"),
        ("IntegrityLevel", "Medium"),
        ("Hashes", f"SHA1=5C1E3B5D7F9A1C3E5B7D9F1A3C5E7B9D1F3A5C7E,MD5=0A1B2C3D4E5F60718293A4B5C6D7E8F9,"
                   f"SHA256={BEACON_SHA256.upper()},IMPHASH=F34D5F2D4577ED6D9CEEC516C1F5A744"),
        ("ParentProcessGuid", "{4b1d9c2e-79f0-6742-1b04-000000003100}"), ("ParentProcessId", "6100"),
        ("ParentImage", "C:\\Windows\\System32\\cmd.exe"), ("ParentCommandLine", "\"C:\\Windows\\system32\\cmd.exe\""),
        ("ParentUser", "CORP\\alice")), "Process Create:"),
    Event(502, "2026-11-23T03:00:01Z", SYSMON, 22, (
        ("RuleName", "-"), ("UtcTime", "2026-11-23 03:00:00.900"), ("ProcessGuid", BEACON_GUID),
        ("ProcessId", "7312"), ("QueryName", "c2.bad.example"), ("QueryStatus", "0"),
        ("QueryResults", "::ffff:203.0.113.77;"), ("Image", BEACON), ("User", "CORP\\alice")), "Dns query:"),
    # the same connection as the Sysmon 3 below, 0.2 s apart: counted once
    _wfp(9001, "2026-11-23T03:00:01Z", 5156, pid="7312", app="\\device\\harddiskvolume3\\users\\public\\beacon.exe",
         direction="%%14593", src="192.168.56.30", sport="50100", dst="203.0.113.77", dport="8443", proto="6"),
    _sysmon3(503, "2026-11-23T03:00:02Z", utc="2026-11-23 03:00:01.200", guid=BEACON_GUID, pid="7312", image=BEACON,
             user="CORP\\alice", initiated="true", src="192.168.56.30", src_host=HOST, sport="50100",
             dst="203.0.113.77", dst_host="-", dport="8443", dport_name="-"),
    _sysmon3(504, "2026-11-23T03:00:04Z", utc="2026-11-23 03:00:03.300",
             guid="{4b1d9c2e-0000-0000-0b00-000000000000}", pid="4", image="System", user="NT AUTHORITY\\SYSTEM",
             initiated="false", src="192.168.56.40", src_host="FS-2.corp.example", sport="50200",
             dst="192.168.56.30", dst_host=HOST, dport="445", dport_name="microsoft-ds"),
    _wfp(9002, "2026-11-23T03:00:05Z", 5156, pid="1020",
         app="\\device\\harddiskvolume3\\windows\\system32\\svchost.exe", direction="%%14592",
         src="192.168.56.30", sport="3389", dst="192.168.56.40", dport="51515", proto="6"),
    _wfp(9003, "2026-11-23T03:00:06Z", 5157, pid="7312", app="\\device\\harddiskvolume3\\users\\public\\beacon.exe",
         direction="%%14593", src="192.168.56.30", sport="50101", dst="198.51.100.99", dport="4444", proto="6"),
    Event(9004, "2026-11-23T03:00:07Z", SECURITY, 5158, (
        ("ProcessId", "2288"), ("Application", "\\device\\harddiskvolume4\\tools\\nc.exe"),
        ("SourceAddress", "0.0.0.0"), ("SourcePort", "5555"), ("Protocol", "6"), ("FilterRTID", "0"),
        ("LayerName", "%%14608"), ("LayerRTID", "36")),
        "The Windows Filtering Platform has permitted a bind to a local port.\n\nApplication Information:\n"
        "\tProcess ID:\t\t2288\n\tApplication Name:\t\\device\\harddiskvolume4\\tools\\nc.exe\n"),
    _wfp(9005, "2026-11-23T03:00:08Z", 5156, pid="7312", app="\\device\\harddiskvolume3\\users\\public\\beacon.exe",
         direction="%%14593", src="192.168.56.30", sport="0", dst="203.0.113.77", dport="0", proto="1"),
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def _process(**fields: Any) -> dict[str, Any]:
    base = {"pid": None, "ppid": None, "process_name": None, "process_path": None, "process_identity": "<unknown>",
            "command_line": None, "username": None, "process_start": None, "parent_name": None, "parent_path": None,
            "exe_sha256": None}
    base.update(fields)
    return base


BEACON_PROCESS = _process(
    pid=7312, ppid=6100, process_name="beacon.exe", process_path=BEACON, process_identity=BEACON.lower(),
    command_line=f"{BEACON} -c 203.0.113.77", username="CORP\\alice", process_start=utc("2026-11-23T03:00:00.100"),
    parent_name="cmd.exe", parent_path="C:\\Windows\\System32\\cmd.exe", exe_sha256=BEACON_SHA256)


def _connection(source: str, logged: str, seen: str, process: dict[str, Any], **fields: Any) -> dict[str, Any]:
    row = {"host": HOST, "host_id": HOST, "os": "windows", "collected_at": utc(logged), "source": source, **process,
           "protocol": "tcp", "family": "ipv4", "local_ip": "192.168.56.30", "state": "ESTABLISHED",
           "first_seen": utc(seen), "last_seen": utc(seen), "observations": 1, "remote_hostname": None,
           "attributed": True, "seen_by": "event", "attribution": "pid", "stdio": None}
    row.update(fields)
    return row


def expected_rows() -> list[tuple[str, dict[str, Any]]]:
    """What every shape of EVENTS reads to, sorted by ``row_order``; health rows last, as a source emits them."""
    wfp_beacon = BEACON_PROCESS  # WFP names pid and path only; Sysmon 1 of the same pid and program fills the rest
    svchost = "C:\\windows\\system32\\svchost.exe"  # WFP's own lower-case tail on the drive Sysmon revealed
    rows: list[tuple[str, dict[str, Any]]] = [
        ("connection", _connection("sysmon", "2026-11-23T03:00:02", "2026-11-23T03:00:01.200", BEACON_PROCESS,
                                   local_port=50100, remote_ip="203.0.113.77", remote_port=8443,
                                   direction="outbound")),
        ("connection", _connection("sysmon", "2026-11-23T03:00:04", "2026-11-23T03:00:03.300",
                                   _process(pid=4, process_name="System", process_path="System",
                                            process_identity="system", username="NT AUTHORITY\\SYSTEM"),
                                   local_port=445, remote_ip="192.168.56.40", remote_port=50200,
                                   remote_hostname="FS-2.corp.example", direction="inbound")),
        ("connection", _connection("wfp", "2026-11-23T03:00:05", "2026-11-23T03:00:05",
                                   _process(pid=1020, process_name="svchost.exe", process_path=svchost,
                                            process_identity=svchost.lower()),
                                   local_port=3389, remote_ip="192.168.56.40", remote_port=51515,
                                   direction="inbound")),
        ("connection", _connection("wfp", "2026-11-23T03:00:06", "2026-11-23T03:00:06", wfp_beacon,
                                   local_port=50101, remote_ip="198.51.100.99", remote_port=4444, state="BLOCKED",
                                   direction="outbound")),
        ("connection", _connection("wfp", "2026-11-23T03:00:08", "2026-11-23T03:00:08", wfp_beacon,
                                   protocol="raw", local_port=0, remote_ip="203.0.113.77", remote_port=0,
                                   state="PROTO_1", direction="outbound")),
        ("dns", {"host": HOST, "host_id": HOST, "collected_at": utc("2026-11-23T03:00:01"), "source": "sysmon",
                 "pid": 7312, "process_name": "beacon.exe", "process_path": BEACON, "process_identity": BEACON.lower(),
                 "query": "c2.bad.example", "qtype": None, "answers": ["203.0.113.77"], "response_code": "NOERROR",
                 "server_ip": None, "timestamp": utc("2026-11-23T03:00:00.900")}),
        ("listener", {"host": HOST, "host_id": HOST, "os": "windows", "collected_at": utc("2026-11-23T03:00:07"),
                      "source": "wfp", **_process(pid=2288, process_name="nc.exe",
                                                  process_path="\\device\\harddiskvolume4\\tools\\nc.exe",
                                                  process_identity="\\device\\harddiskvolume4\\tools\\nc.exe"),
                      "protocol": "tcp", "family": "ipv4", "local_ip": "0.0.0.0", "local_port": 5555,
                      "first_seen": utc("2026-11-23T03:00:07"), "last_seen": utc("2026-11-23T03:00:07"),
                      "observations": 1, "attributed": True}),
    ]
    return sorted(rows, key=row_order)


def row_order(record: tuple[str, dict[str, Any]]) -> tuple:
    kind, row = record
    return kind, row.get("first_seen") or row.get("timestamp"), row.get("local_port") or 0


EXPECTED_HEALTH = {"wfp_seen_by_sysmon": 1, "wfp_device_path": 1}
