"""Reads Zeek conn.log and dns.log, as TSV (the ASCII writer's ``#fields`` header) or JSON (``LogAscii::use_json``).

Zeek sees packets, not processes: every row's process is ``<unknown>`` and unattributed, and each file adds one
health row saying the source is network-only, so the report says why no process is named. A connection belongs
to the originator (``id.orig_h``, direction outbound) when ``local_orig`` says the originator is ours, to the
responder (direction inbound: a client reached one of its services) when only ``local_resp`` says so, else to the
originator with direction unknown. ``ts`` is the first packet, ``ts + duration`` the last. A DNS row belongs to the
client that asked (``id.orig_h``); the server is ``id.resp_h``.

The TSV header (docs.zeek.org, "Zeek Logs" / the ASCII writer) is ``#separator \\x09``, ``#set_separator``,
``#empty_field``, ``#unset_field``, ``#path``, ``#open``, ``#fields``, ``#types``; a log Zeek finished ends with
``#close``. A log without ``#close`` is still being written or was cut short: it is read, and that is said.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from orchestrator.schema import SchemaError, normalise_connection, normalise_dns, parse_time
from orchestrator.sources.base import Health, OnSkip, Record, open_input
from orchestrator.sources.export import field, read_export
from orchestrator.sources.sysmon import ip_answers

SOURCE = "zeek"
NAME = "zeek"  # --input-format
# conn_state -> TCP state (Zeek's Conn::Info documentation). Attempts nobody answered (S0; SYN then RST or FIN
# with no SYN-ACK: RSTOS0, SH) are half-open SYN_SENT sockets, what the scan detector counts; a rejected attempt
# (REJ) and an established connection later reset (RSTO, RSTR) are CLOSE; established ones (S1 still open, SF
# closed normally) ESTABLISHED; a close begun by one side only FIN_WAIT1 (originator, S2) or CLOSE_WAIT
# (responder, S3); responder-only or mid-stream traffic (RSTRH, SHR, OTH) has no state seen from the host.
CONN_STATES = {"S0": "SYN_SENT", "RSTOS0": "SYN_SENT", "SH": "SYN_SENT", "REJ": "CLOSE", "RSTO": "CLOSE",
               "RSTR": "CLOSE", "S1": "ESTABLISHED", "SF": "ESTABLISHED", "S2": "FIN_WAIT1", "S3": "CLOSE_WAIT",
               "RSTRH": "NONE", "SHR": "NONE", "OTH": "NONE"}
_NETWORK_ONLY = "network-only source (Zeek): no process attribution, every row's process is <unknown>"
_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")


def sniff_tsv(first_line: bytes) -> bool:
    return first_line.startswith(b"#separator")


def sniff(first: Any) -> bool:
    return isinstance(first, Mapping) and "ts" in first and (
        field(first, "id.orig_h") is not None and ("conn_state" in first or "query" in first or "uid" in first))


def read_zeek(path: Path, *, skip_bad: bool = False, on_skip: OnSkip = None) -> Iterator[Record]:
    """Yield (kind, schema row) for each connection of a conn.log or lookup of a dns.log, TSV or JSON."""
    health = Health(SOURCE)
    with open_input(path, "a Zeek log") as handle:
        tsv = handle.read(10) == b"#separator"

    def convert(item: Any, health: Health) -> Iterable[Record]:
        return _convert(item, health, path.name)

    items = tsv_items(path, health) if tsv else None
    return read_export(path, source=SOURCE, convert=convert, items=items, skip_bad=skip_bad, on_skip=on_skip,
                       health=health)


def tsv_items(path: Path, health: Health) -> Iterator[tuple[str, Any, str | None]]:
    """(file:line, row as a dict of field -> value or None, None) per data line of a Zeek TSV log."""
    separator, set_separator, empty, unset = "\t", ",", "(empty)", "-"
    fields: list[str] | None = None
    closed = False
    with open_input(path, "a Zeek log") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                yield f"{path}:{number}", None, f"not UTF-8 (byte {exc.start})"
                continue
            if not line:
                continue
            if line.startswith("#"):
                directive, _, value = line.partition(" ") if line.startswith("#separator") else line.partition(
                    separator)
                if directive == "#separator":
                    separator = _unescape(value) or "\t"
                elif directive == "#set_separator":
                    set_separator = value
                elif directive == "#empty_field":
                    empty = value
                elif directive == "#unset_field":
                    unset = value
                elif directive == "#fields":
                    fields = value.split(separator)
                elif directive == "#close":
                    closed = True
                continue
            if fields is None:
                yield f"{path}:{number}", None, "data line before the #fields header"
                continue
            values = line.split(separator)
            if len(values) != len(fields):
                yield f"{path}:{number}", None, f"expected {len(fields)} fields, got {len(values)}"
                continue
            row: dict[str, Any] = {}
            for name, value in zip(fields, values):
                if value == unset:
                    row[name] = None
                elif value == empty:
                    row[name] = [] if name in ("answers", "TTLs") else ""
                elif name in ("answers", "TTLs"):
                    row[name] = [_unescape(v) for v in value.split(set_separator)]
                else:
                    row[name] = _unescape(value)
            yield f"{path}:{number}", row, None
    if fields is not None and not closed:
        health.note(path.name, "zeek_not_closed", "log has no #close line: still being written, or cut short")


def _unescape(value: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value) if "\\x" in value else value


def _bool(value: Any) -> bool | None:
    """local_orig/local_resp: T/F in TSV, true/false in JSON, unset when Site::local_nets was not configured."""
    if isinstance(value, bool):
        return value
    if value in ("T", "true"):
        return True
    if value in ("F", "false"):
        return False
    if value is None or value == "":
        return None
    raise SchemaError(f"expected T or F, got {value!r}")


def _convert(row: Any, health: Health, file_name: str) -> Iterable[Record]:
    if not isinstance(row, Mapping):
        raise SchemaError(f"expected a log row object, got {type(row).__name__}")
    if field(row, "id.orig_h") is None:
        raise SchemaError("no id.orig_h: not a Zeek conn or dns row")
    if "query" in row or "qtype_name" in row or "rcode" in row:
        record = _dns(row, health)
    elif "conn_state" in row or "duration" in row:
        record = _connection(row)
    else:
        health.note(file_name, "zeek_other_logs", "rows of Zeek logs other than conn and dns not read")
        return []
    if record is None:
        return []
    health.note(file_name, "network_only", _NETWORK_ONLY)
    return [record]


def _connection(row: Mapping[str, Any]) -> Record:
    local_orig, local_resp = _bool(row.get("local_orig")), _bool(row.get("local_resp"))
    orig = (field(row, "id.orig_h"), field(row, "id.orig_p"))
    resp = (field(row, "id.resp_h"), field(row, "id.resp_p"))
    if local_orig:
        direction, local, remote = "outbound", orig, resp
    elif local_resp:
        direction, local, remote = "inbound", resp, orig
    else:
        direction, local, remote = "unknown", orig, resp
    proto = str(row.get("proto") or "").lower()
    if proto not in ("tcp", "udp", "icmp"):
        raise SchemaError(f"field 'proto' unknown: {row.get('proto')!r}")
    first = parse_time(row.get("ts"))
    duration = row.get("duration")
    try:
        last = first + timedelta(seconds=float(duration)) if first and duration not in (None, "") else first
    except (TypeError, ValueError, OverflowError):
        raise SchemaError(f"field 'duration' must be seconds, got {duration!r}") from None
    ports = proto != "icmp"  # Zeek puts ICMP type and code in the port fields: not ports
    record = {
        "host": local[0], "source": SOURCE, "pid": None, "attributed": False, "protocol": proto,
        "local_ip": local[0], "local_port": local[1] if ports else None, "remote_ip": remote[0],
        "remote_port": remote[1] if ports else None,
        "state": CONN_STATES.get(str(row.get("conn_state") or ""), "NONE") if proto == "tcp" else "NONE",
        "first_seen": first, "last_seen": last, "collected_at": last, "direction": direction, "seen_by": "event",
    }
    return "connection", normalise_connection(record)


def _dns(row: Mapping[str, Any], health: Health) -> Record | None:
    client = field(row, "id.orig_h")
    query = row.get("query")
    if query in (None, ""):
        health.note(str(client), "zeek_dns_no_query", "DNS messages without a question not read")
        return None
    answers = row.get("answers") or []
    if isinstance(answers, str):
        answers = answers.split(",")
    if not isinstance(answers, list):
        raise SchemaError("field 'answers' must be a list")
    record = {"host": client, "source": SOURCE, "query": query, "qtype": row.get("qtype_name") or row.get("qtype"),
              "answers": ip_answers(answers), "response_code": row.get("rcode_name"),
              "server_ip": field(row, "id.resp_h"), "timestamp": row.get("ts")}
    return "dns", normalise_dns(record)
