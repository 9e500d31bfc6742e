"""The one mapping from Velociraptor artifact rows to connhunt's schema, per artifact source.

The live hunt pull (velociraptor/pull.py), the monitor pull (velociraptor/monitor.py) and the offline zip reader
(velociraptor_offline.py) all hand rows of one artifact source to ``map_source``, so a row stores the same whichever
way it reached connhunt. connhunt's own artifacts already emit the schema's columns (connections, listeners, dns);
the stock Linux.Network.Netstat, Linux/Windows.Network.NetstatEnriched, Windows.Network.Netstat and
MacOS.Network.Netstat are renamed here, and their connected sockets get a direction from the listening sockets of
the same collection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from orchestrator.schema import SchemaError, normalise, parse_time
from orchestrator.sources.base import Health, Record, as_bool, blank_to_none
from orchestrator.sources.sysmon import ip_answers

SOURCE = "velociraptor"
MONITOR = "Custom.Connhunt.Monitor"
MONITOR_WINDOW = "Custom.Connhunt.MonitorWindow"
# A connection is the same while these are (the monitor artifact's own _key), and one opening is one first_seen.
_IDENTITY = ("protocol", "local_ip", "local_port", "remote_ip", "remote_port", "pid", "process_start", "first_seen")
Bad = Callable[[str, object], None]


@dataclass(frozen=True)
class Endpoint:
    """What a row mapper needs besides the row: who the endpoint is, and where to count what it does not read.

    ``client_id`` is the Velociraptor client id when the server said so (a live pull, a hunt export): it is the
    fleet's host key and replaces the machine's own host id that the row carries.
    """

    host: str
    host_id: str
    os: str | None = None
    collected_at: Any = None
    client_id: str | None = None
    health: Health = field(default_factory=lambda: Health(SOURCE))
    listening: frozenset[str] = frozenset()  # "tcp/443" keys of this collection's listening sockets

    def defaults(self) -> dict[str, Any]:
        return {"host": self.host, "host_id": self.host_id, "collected_at": self.collected_at, "source": SOURCE}


@dataclass(frozen=True)
class RowMapper:
    """How one artifact source's rows become records; ``listening`` (if set) gives a row's "proto/port" key when
    it is a listening socket, and the source is then read whole first, to tell inbound connections."""

    map: Callable[[Mapping[str, Any], Endpoint], Record | None]
    listening: Callable[[Mapping[str, Any]], str | None] | None = None
    # a whole-source step before mapping (the monitor's opened/closed events merged into one row per opening)
    prepare: Callable[[list[tuple[str, Any]]], list[tuple[str, Any]]] | None = None


def split_source(artifact_source: str) -> tuple[str, str]:
    """('Custom.Connhunt.Netstat', 'Linux') from 'Custom.Connhunt.Netstat/Linux'."""
    artifact, _, source = artifact_source.partition("/")
    return artifact, source


def mapper_for(artifact_source: str) -> RowMapper | None:
    """The mapper of one artifact source, or None when connhunt does not know its columns."""
    artifact, source = split_source(artifact_source)
    if artifact == "Custom.Connhunt.Netstat":
        return _LISTENER if source == "Listeners" else _CONNECTION
    if artifact in (MONITOR, MONITOR_WINDOW):
        return _MONITOR
    if artifact == "Custom.Connhunt.Windows.SysmonNetwork":
        return _DNS if source == "DNS" else _CONNECTION
    if artifact == "Custom.Connhunt.DNS":
        return _DNS
    if artifact.startswith("Custom.Connhunt."):  # connhunt's own (e.g. bench/pull's): connection schema columns
        return _CONNECTION
    return _BUILTIN.get(artifact)


def map_source(artifact_source: str, rows: Iterable[tuple[str, Any]], endpoint: Endpoint,
               bad: Bad) -> Iterator[Record]:
    """Records of the rows ((where, row) pairs) of one artifact source; a row that is not one goes to ``bad``.

    Rows of an unknown artifact are counted in the endpoint's health, not read.
    """
    mapper = mapper_for(artifact_source)
    if mapper is None:
        first = next(iter(rows), None)
        if first is not None:
            endpoint.health.note(endpoint.host, "unknown_artifact", f"rows of artifact "
                                 f"{split_source(artifact_source)[0]} not read: connhunt does not know its columns")
        return
    if mapper.prepare is not None:
        rows = mapper.prepare(list(rows))
    if mapper.listening is not None:
        rows = list(rows)
        keys = {mapper.listening(row) for _, row in rows if isinstance(row, Mapping)}
        endpoint = replace(endpoint, listening=frozenset(k for k in keys if k))
    for where, row in rows:
        if not isinstance(row, Mapping):
            bad(where, f"expected a JSON object, got {type(row).__name__}")
            continue
        try:
            record = mapper.map(row, endpoint)
        except SchemaError as exc:
            bad(where, exc)
            continue
        if record is not None:
            yield record


def _own(row: Mapping[str, Any], endpoint: Endpoint) -> dict[str, Any]:
    """A row of connhunt's own artifacts over the endpoint's defaults; the client id, when known, is host_id."""
    record = {**endpoint.defaults(), "os": endpoint.os, **blank_to_none(dict(row))}
    if endpoint.client_id:
        record["host_id"] = endpoint.client_id
    record["source"] = SOURCE if row.get("source") in (None, "", SOURCE) else row["source"]
    for key in ("attributed", "stdio"):
        value = as_bool(record.get(key))
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def _schema_connection(row: Mapping[str, Any], endpoint: Endpoint) -> Record | None:
    record = _own(row, endpoint)
    record.pop("event", None)
    return normalise("connection", record)


def _schema_listener(row: Mapping[str, Any], endpoint: Endpoint) -> Record | None:
    return normalise("listener", _own(row, endpoint))


def _schema_dns(row: Mapping[str, Any], endpoint: Endpoint) -> Record | None:
    record = _own(row, endpoint)
    record.pop("os", None)
    answers = record.get("answers")
    if isinstance(answers, list):
        # addresses only, canonical (::ffff:192.0.2.7 is 192.0.2.7), to match connections' remote_ip
        record["answers"] = ip_answers(answers)
    return normalise("dns", record)


def openings(rows: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """One row per opening of the monitor's events: 'opened'/'present' rows, last_seen from their 'closed' row.

    Every reconnect of a beacon is a new socket, hence its own row and its own first_seen: exactly the series of
    starts the beacon detector scores. A 'closed' row whose opening fell before the window still stands for a
    connection (it carries the opening's first_seen), so it is kept on its own. Rows without an event column
    (not the monitor's) pass through.
    """
    merged: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}
    out: list[tuple[str, Any]] = []
    for where, row in rows:
        event = row.get("event") if isinstance(row, Mapping) else None
        if event is None:
            out.append((where, row))
            continue
        if event not in ("opened", "present", "closed"):
            continue
        key = tuple(row.get(k) for k in _IDENTITY)
        record = {k: v for k, v in row.items() if k != "event" and not k.startswith("_")}
        if key not in merged:
            merged[key] = (where, record)
            out.append(merged[key])
        elif event == "closed":
            merged[key][1].update(last_seen=record.get("last_seen"), observations=record.get("observations"))
    return out


_CONNECTION = RowMapper(_schema_connection)
_MONITOR = RowMapper(_schema_connection, prepare=openings)
_LISTENER = RowMapper(_schema_listener)
_DNS = RowMapper(_schema_dns)


# -- Velociraptor's stock netstat artifacts --

# Linux.Network.Netstat names the kernel's TCP states (include/net/tcp_states.h) in words; netstat() and
# connections() use Windows-like or psutil names.
_STATES = {"Established": "ESTABLISHED", "Syn Sent": "SYN_SENT", "Time Wait": "TIME_WAIT", "Listening": "LISTEN",
           "ESTAB": "ESTABLISHED", "SYN_RCVD": "SYN_RECV", "DELETE": "CLOSE", "CLOSED": "CLOSE"}


def _first(value: Any) -> Any:
    """A VQL subquery column: its one value (Velociraptor writes one row of one column as the bare value)."""
    if isinstance(value, list):
        value = value[0] if value else None
        if isinstance(value, Mapping) and len(value) == 1:
            value = next(iter(value.values()))
    return value


def _creation_time(value: Any) -> Any:
    """Windows' socket creation time; a socket without one has the zero FILETIME (year 1601), which is no time."""
    try:
        parsed = parse_time(value)
    except SchemaError:
        return None
    return parsed if parsed is not None and parsed.year >= 1990 else None


@dataclass(frozen=True)
class _Columns:
    """Where a stock artifact keeps each socket field (its own column names)."""

    local_ip: str
    local_port: str
    remote_ip: str
    remote_port: str
    state: str
    protocol: str | None  # None: TCP only (Linux.Network.Netstat reads /proc/net/tcp)


def _socket(row: Mapping[str, Any], cols: _Columns) -> dict[str, Any]:
    def part(name: str) -> Any:  # "Laddr.IP": a column of that name (VQL's unaliased Laddr.IP), else nested
        if name in row:
            return row[name]
        value: Any = row
        for key in name.split("."):
            value = value.get(key) if isinstance(value, Mapping) else None
        return value

    state = str(part(cols.state) or "")
    return {"protocol": str(part(cols.protocol) or "tcp").lower() if cols.protocol else "tcp",
            "local_ip": part(cols.local_ip), "local_port": part(cols.local_port),
            "remote_ip": part(cols.remote_ip), "remote_port": part(cols.remote_port),
            "state": _STATES.get(state, state)}


def _is_listening(sock: Mapping[str, Any]) -> bool:
    return sock["state"] == "LISTEN" or (sock["protocol"] == "udp" and str(sock["remote_port"] or 0) == "0")


def _builtin(cols: _Columns, process: Callable[[Mapping[str, Any]], dict[str, Any]], os_name: str | None) -> RowMapper:
    """A mapper for a stock netstat artifact: listening sockets become listeners, connected ones connections with
    a direction from this collection's listeners."""

    def listening(row: Mapping[str, Any]) -> str | None:
        sock = _socket(row, cols)
        return f"{sock['protocol']}/{sock['local_port']}" if _is_listening(sock) else None

    def map_row(row: Mapping[str, Any], endpoint: Endpoint) -> Record | None:
        sock = _socket(row, cols)
        record = {**endpoint.defaults(), "os": os_name or endpoint.os, **blank_to_none(process(row)), **sock}
        if endpoint.client_id:
            record["host_id"] = endpoint.client_id
        if _is_listening(sock):
            return normalise("listener", blank_to_none(record))
        inbound = f"{sock['protocol']}/{sock['local_port']}" in endpoint.listening
        record["direction"] = "inbound" if inbound else "outbound"
        return normalise("connection", blank_to_none(record))

    return RowMapper(map_row, listening)


def _proc_info(row: Mapping[str, Any]) -> dict[str, Any]:
    """Linux/MacOS NetstatEnriched: the process tracker's entry (pslist's columns) in ProcInfo."""
    info = row.get("ProcInfo") if isinstance(row.get("ProcInfo"), Mapping) else {}
    return {"pid": row.get("Pid") if (row.get("Pid") or 0) > 0 else 0, "ppid": info.get("Ppid"),
            "process_name": info.get("Name"), "process_path": info.get("Exe"),
            "command_line": info.get("CommandLine"), "username": info.get("Username"),
            "process_start": info.get("CreateTime") or info.get("StartTime")}


def _linux_netstat_process(row: Mapping[str, Any]) -> dict[str, Any]:
    process = row.get("ProcessInfo") if isinstance(row.get("ProcessInfo"), Mapping) else {}
    command_line = process.get("CommandLine")
    # /proc/PID/comm ends in a newline; /proc/PID/cmdline separates arguments with NULs
    return {"pid": process.get("Pid") or 0, "process_name": (process.get("Command") or "").strip() or None,
            "command_line": " ".join(command_line.split("\x00")).strip() or None
            if isinstance(command_line, str) else None}


def _windows_enriched_process(row: Mapping[str, Any]) -> dict[str, Any]:
    hashes = _first(row.get("Hash"))
    return {"pid": row.get("Pid"), "ppid": _first(row.get("Ppid")), "process_name": _first(row.get("Name")),
            "process_path": _first(row.get("Path")), "command_line": _first(row.get("CommandLine")),
            "username": _first(row.get("Username")),
            "exe_sha256": hashes.get("SHA256") if isinstance(hashes, Mapping) else None,
            "family": row.get("Family"), "first_seen": _creation_time(row.get("Timestamp"))}


def _windows_netstat_process(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"pid": row.get("Pid"), "process_name": _first(row.get("Name")), "family": row.get("Family"),
            "first_seen": _creation_time(row.get("Timestamp"))}


_ENRICHED = _Columns("Laddr", "Lport", "Raddr", "Rport", "Status", "Type")
_BUILTIN: dict[str, RowMapper] = {
    "Linux.Network.Netstat": _builtin(_Columns("LocalAddr", "LocalPort", "RemoteAddr", "RemotePort", "State", None),
                                      _linux_netstat_process, "linux"),
    # Linux.Network.NetstatEnriched has no Type column: connections() there is TCP unless the ports say otherwise
    "Linux.Network.NetstatEnriched": _builtin(_ENRICHED, _proc_info, "linux"),
    "MacOS.Network.Netstat": _builtin(_ENRICHED, _proc_info, "darwin"),
    "Windows.Network.NetstatEnriched": _builtin(_ENRICHED, _windows_enriched_process, "windows"),
    "Windows.Network.Netstat": _builtin(_Columns("Laddr.IP", "Laddr.Port", "Raddr.IP", "Raddr.Port", "Status",
                                                 "Type"), _windows_netstat_process, "windows"),
}
