"""Reads osquery results into schema rows: the results log of osqueryd's filesystem logger, and `osqueryi --json`.

The results log is JSON lines in one of osquery's three result formats (docs/wiki/deployment/logging.md):
event (``"action": "added"|"removed"`` with ``"columns"``), batch (``"diffResults": {"added": [...],
"removed": [...]}``) and snapshot (``"action": "snapshot"`` with ``"snapshot": [...]``); the host is
``hostIdentifier`` (``hostname`` in osquery before 2.0) and the collection time ``unixTime``. `osqueryi --json`
prints one JSON array of rows with no host and no time: a row's own ``host`` column (connhunt's pack selects one)
or else the file's stem names the host (said in a health row), and the file's modification time stands for the
collection time.

A row is read whichever way its query spelled the columns: connhunt's pack (artifacts/osquery/connhunt.conf)
already aliases them to the schema's names; a hand-written query over ``process_open_sockets`` joined to
``processes``, ``users`` and ``hash`` keeps osquery's own (pid, family, protocol, local_address, remote_address,
local_port, remote_port, state, name, path, cmdline, parent, start_time, username, sha256). osquery writes every
value as a string (numbers too, unless ``--logger_numerics``), so each is converted here.

Rows of ``socket_events`` (Linux, audit-based: one row per connect/bind/accept system call, with ``action``, pid,
path, addresses, ports, ``success`` and ``time``) are events, not a snapshot: connect is an outbound connection,
accept an inbound one (a client reaching a listener of this host), bind a listener row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError
from orchestrator.schema import SchemaError, normalise_connection, normalise_dns, normalise_listener
from orchestrator.sources.base import (
    BadInput,
    Health,
    OnSkip,
    Record,
    as_bool,
    blank_to_none,
    json_array_items,
    json_lines,
    open_input,
    windows_basename,
)
from orchestrator.sources.sysmon import query_answers

SOURCE = "osquery"

# process_open_sockets.family: AF_INET is 2 everywhere; AF_INET6 is 10 on Linux, 23 on Windows, 30 on macOS.
_FAMILY = {"2": "ipv4", "10": "ipv6", "23": "ipv6", "30": "ipv6"}
# process_open_sockets.protocol is the IP protocol number; anything but TCP/UDP is a raw socket to connhunt.
_PROTOCOL = {"6": "tcp", "17": "udp"}
# osquery's raw column -> schema column, for rows of process_open_sockets joined to processes/users/hash.
_RAW_COLUMNS = {"pid": "pid", "parent": "ppid", "name": "process_name", "path": "process_path",
                "cmdline": "command_line", "username": "username", "start_time": "process_start",
                "sha256": "exe_sha256", "local_address": "local_ip", "local_port": "local_port",
                "remote_address": "remote_ip", "remote_port": "remote_port", "state": "state"}
_UNSPECIFIED = {"0.0.0.0", "::", ""}
# socket_events (Linux, audit-based; osquery specs/linux/socket_events.table): one row per connect(), bind() or
# accept() system call, with the caller's pid and executable path, and the time it happened.
SOCKET_ACTIONS = {"connect", "bind", "accept"}


def is_osquery_log(first: Any) -> bool:
    """Whether the first JSON value of a file is an osquery results-log line."""
    return isinstance(first, Mapping) and (
        "hostIdentifier" in first or "diffResults" in first or "snapshot" in first
        or ({"name", "action", "columns"} <= first.keys()))


def read_osquery_log(path: Path, *, skip_bad: bool = False, on_skip: OnSkip = None) -> Iterator[Record]:
    """Yield (kind, schema row) for each socket or DNS row of an osqueryd results log (any result format)."""
    bad = BadInput(skip_bad, on_skip)
    health = Health(SOURCE)
    seen_any = False
    with open_input(path, "an osquery results file") as handle:
        for number, line, reason in json_lines(handle):
            seen_any = True
            where = f"{path}:{number}"
            if reason is not None:
                bad(where, reason)
                continue
            try:
                host, collected_at, rows = _unpack(line)
            except SchemaError as exc:
                bad(where, exc)
                continue
            name = str(line.get("name") or "?")
            decorations = line.get("decorations") if isinstance(line.get("decorations"), Mapping) else {}
            for action, row in rows:
                if action == "removed":
                    # A removed row is a socket that closed since the previous run, which logged it as added.
                    health.note(host, "osquery_removed", "differential 'removed' rows not read (already logged "
                                                         "when added)")
                    continue
                try:
                    record = result_row(row, host, collected_at, decorations, name, health)
                except SchemaError as exc:
                    bad(where, f"query {name!r}: {exc}")
                    continue
                if record is not None:
                    yield record
    if not seen_any:
        raise InputError(f"{path}: empty file, no records")
    yield from health.records()


def read_osqueryi_json(path: Path, *, skip_bad: bool = False, on_skip: OnSkip = None) -> Iterator[Record]:
    """Yield (kind, schema row) for each row of the JSON array `osqueryi --json` prints (streamed, item by item)."""
    bad = BadInput(skip_bad, on_skip)
    health = Health(SOURCE)
    stem = path.stem
    # osqueryi prints no time; the file was written when the query ran, near enough for connhunt's windows.
    written = path.stat().st_mtime if path.exists() else None
    with open_input(path, "an osquery results file") as handle:
        try:
            for number, row in json_array_items(handle):
                where = f"{path}:{number}"
                if not isinstance(row, Mapping):
                    bad(where, f"expected a JSON object, got {type(row).__name__}")
                    continue
                # connhunt's pack selects the host name; a hand-written query has none, so the file names the host.
                host = str(row.get("host") or "") or stem
                if host == stem:
                    health.note(host, "host_from_file_name", f"rows name no host: host {stem!r} is the file name")
                try:
                    record = result_row(row, host, written, {}, "osqueryi", health)
                except SchemaError as exc:
                    bad(where, exc)
                    continue
                if record is not None:
                    yield record
        except ValueError as exc:
            # The array itself is broken (cut short, not an array): nothing after it can be read.
            line, _, reason = str(exc).partition(": ")
            raise InputError(f"{path}:{line.removeprefix('line ')}: {reason}") from None
    yield from health.records()


def _unpack(line: Any) -> tuple[str, Any, list[tuple[str, Any]]]:
    """(host, unixTime, [(action, row)]) of one results-log line in event, batch or snapshot format."""
    if not isinstance(line, Mapping):
        raise SchemaError(f"expected a JSON object, got {type(line).__name__}")
    host = line.get("hostIdentifier") or line.get("hostname")
    if not host:
        raise SchemaError("no hostIdentifier: not an osquery results-log line")
    unix_time = line.get("unixTime")
    if "diffResults" in line:
        diff = line["diffResults"]
        if not isinstance(diff, Mapping):
            raise SchemaError("'diffResults' must be an object")
        rows = [(action, row) for action in ("added", "removed") for row in _rows(diff.get(action), action)]
    elif "snapshot" in line:
        rows = [("snapshot", row) for row in _rows(line["snapshot"], "snapshot")]
    elif "columns" in line:
        action = line.get("action")
        if action not in ("added", "removed", "snapshot"):
            raise SchemaError(f"unknown action {action!r}")
        rows = [(action, line["columns"])]
    else:
        raise SchemaError("no 'columns', 'snapshot' or 'diffResults': not an osquery result")
    return str(host), unix_time, rows


def _rows(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SchemaError(f"{what!r} must be a list of rows")
    return value


def result_row(row: Any, host: str, collected_at: Any, decorations: Mapping[str, Any], query: str,
               health: Health, source: str = SOURCE) -> Record | None:
    """One schema record from one result row, or None (counted in ``health``) when the row is not one connhunt uses."""
    if not isinstance(row, Mapping):
        raise SchemaError(f"a row must be a JSON object, got {type(row).__name__}")
    osquery_columns = "remote_address" in row  # tested before blanks go: an AF_UNIX socket has an empty one
    row = blank_to_none(dict(row))
    row.pop("host", None)  # the log line's hostIdentifier names the host, whatever the query selected
    defaults = {"host": host, "host_id": decorations.get("host_uuid") or host, "collected_at": collected_at,
                "source": source}
    if "query" in row and "remote_ip" not in row and not osquery_columns:
        return "dns", normalise_dns(_dns_columns(row, defaults))
    if osquery_columns and str(row.get("action")) in SOCKET_ACTIONS:
        return _socket_event(row, defaults, health)
    if "remote_ip" in row:  # connhunt's pack: the schema's own column names
        record = {**defaults, **row}
        attributed = as_bool(record.pop("attributed", None))
        if attributed is not None:
            record["attributed"] = attributed
    elif osquery_columns:
        record = _raw_socket(row, defaults, health)
        if record is None:
            return None
    else:
        health.note(host, "unknown_query", f"rows of query {query!r} not read: no socket or DNS columns")
        return None
    if record.get("protocol") != "raw" and (str(record.get("remote_port", "0")) == "0"
                                            or str(record.get("remote_ip", "")) in _UNSPECIFIED):
        health.note(host, "not_connected", "listening or unconnected sockets not read (no remote end)")
        return None
    # osquery reports an owner it cannot see as pid -1 (another namespace, or a process that just exited).
    if str(record.get("pid", "")) in ("-1", "0"):
        record["pid"] = 0
        record["attributed"] = False
    return "connection", normalise_connection(record)


def _socket_event(row: Mapping[str, Any], defaults: dict[str, Any], health: Health) -> Record | None:
    """A socket_events row: connect is this host connecting out, accept a client reaching a listener of this
    host (remote_address is the client), bind a listener (a bound UDP socket is one too)."""
    family = _FAMILY.get(str(row.get("family", "")))
    if family is None:
        health.note(defaults["host"], "not_inet", "non-IP sockets (e.g. AF_UNIX) not read")
        return None
    path = row.get("path")
    record: dict[str, Any] = {
        **defaults, "family": family, "pid": row.get("pid"), "process_path": path,
        "process_name": windows_basename(path) if isinstance(path, str) else None,
        "local_ip": row.get("local_address"), "local_port": row.get("local_port"),
        "first_seen": row.get("time"), "seen_by": "event",
    }
    protocol = _PROTOCOL.get(str(row.get("protocol", "")))
    if protocol is None:
        # Older osquery has no protocol column, and audit cannot always tell it: a connect or accept with a port
        # is taken as TCP and counted, so the guess is visible.
        protocol = "tcp"
        health.note(defaults["host"], "socket_events_protocol_assumed", "socket_events rows without a protocol "
                                                                       "read as TCP")
    record["protocol"] = protocol
    action = row["action"]
    if action == "bind":
        if str(record.get("local_port") or "0") == "0":
            health.note(defaults["host"], "not_connected", "binds to port 0 (an ephemeral port) not read")
            return None
        return "listener", normalise_listener(record)
    if str(row.get("remote_port") or "0") == "0" or str(row.get("remote_address") or "") in _UNSPECIFIED:
        health.note(defaults["host"], "not_connected", "listening or unconnected sockets not read (no remote end)")
        return None
    # success=0 on connect is a call that did not complete (a non-blocking connect in progress, or refused):
    # half-open, what the scan detector counts.
    established = str(row.get("success", "1")) != "0"
    record.update({"remote_ip": row.get("remote_address"), "remote_port": row.get("remote_port"),
                   "direction": "outbound" if action == "connect" else "inbound",
                   "state": ("ESTABLISHED" if established else "SYN_SENT") if protocol == "tcp" else "NONE"})
    if str(record.get("local_port") or "") == "0":
        record["local_port"] = None  # connect() is audited before the kernel picks the local port
    if str(record.get("pid", "")) in ("-1", "0"):
        record["pid"], record["attributed"] = 0, False
    return "connection", normalise_connection(record)


def _raw_socket(row: Mapping[str, Any], defaults: dict[str, Any], health: Health) -> dict[str, Any] | None:
    """A process_open_sockets row (joined or not) in osquery's own column names, renamed to the schema's."""
    family = _FAMILY.get(str(row.get("family", "")))
    if family is None:
        health.note(defaults["host"], "not_inet", "non-IP sockets (e.g. AF_UNIX) not read")
        return None
    protocol = _PROTOCOL.get(str(row.get("protocol", "")), "raw")
    record: dict[str, Any] = {**defaults, "family": family, "protocol": protocol}
    for column, field in _RAW_COLUMNS.items():
        if column in row:
            record[field] = row[column]
    path = record.get("process_path")
    if isinstance(path, str) and (path[1:3] == ":\\" or path.startswith("\\\\")):
        record["os"] = "windows"
    return record


def _dns_columns(row: Mapping[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    record = {**defaults, **row}
    answers = record.get("answers")
    if isinstance(answers, str):
        # dns_lookup_events.response is the DNS client's QueryResults text, as in Sysmon Event ID 22.
        record["answers"] = query_answers(answers)
    return record
