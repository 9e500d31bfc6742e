"""The one record schema every source normalises into, and the normalisers that enforce it.

Sources call ``normalise_connection`` / ``normalise_dns`` at the edge so that the store, the detectors and the
reports only ever see one spelling of each value: protocol tcp/udp/raw, family ipv4/ipv6, upper-case TCP state
names, canonical IP text, UTC times, and a process identity keyed on a normalised path (never on a pid).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

# (column, DuckDB type). Order is the store's column order.
CONNECTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("host", "VARCHAR"),
    ("host_id", "VARCHAR"),
    ("os", "VARCHAR"),
    ("collected_at", "TIMESTAMP"),
    ("source", "VARCHAR"),
    ("pid", "BIGINT"),
    ("ppid", "BIGINT"),
    ("process_name", "VARCHAR"),
    ("process_path", "VARCHAR"),
    ("process_identity", "VARCHAR"),
    ("command_line", "VARCHAR"),
    ("username", "VARCHAR"),
    ("process_start", "TIMESTAMP"),
    ("parent_name", "VARCHAR"),
    ("parent_path", "VARCHAR"),
    ("exe_sha256", "VARCHAR"),
    ("protocol", "VARCHAR"),
    ("family", "VARCHAR"),
    ("local_ip", "VARCHAR"),
    ("local_port", "INTEGER"),
    ("remote_ip", "VARCHAR"),
    ("remote_port", "INTEGER"),
    ("state", "VARCHAR"),
    ("first_seen", "TIMESTAMP"),
    ("last_seen", "TIMESTAMP"),
    ("observations", "INTEGER"),
    ("remote_hostname", "VARCHAR"),
    ("attributed", "BOOLEAN"),
)

DNS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("host", "VARCHAR"),
    ("host_id", "VARCHAR"),
    ("collected_at", "TIMESTAMP"),
    ("source", "VARCHAR"),
    ("pid", "BIGINT"),
    ("process_name", "VARCHAR"),
    ("process_path", "VARCHAR"),
    ("process_identity", "VARCHAR"),
    ("query", "VARCHAR"),
    ("qtype", "VARCHAR"),
    ("answers", "VARCHAR[]"),
    ("response_code", "VARCHAR"),
    ("server_ip", "VARCHAR"),
    ("timestamp", "TIMESTAMP"),
)

# What a source could not see, so that the report can say so instead of hiding it.
HEALTH_COLUMNS: tuple[tuple[str, str], ...] = (
    ("host", "VARCHAR"),
    ("source", "VARCHAR"),
    ("collected_at", "TIMESTAMP"),
    ("check", "VARCHAR"),
    ("count", "BIGINT"),
    ("message", "VARCHAR"),
)

UNKNOWN_PROCESS = "<unknown>"  # the identity of a socket whose owner could not be seen
CONNECTION_REQUIRED = ("host", "protocol", "remote_ip")
DNS_REQUIRED = ("host", "query")

_PROTOCOLS = {"tcp": "tcp", "tcp4": "tcp", "tcp6": "tcp", "udp": "udp", "udp4": "udp", "udp6": "udp",
              "raw": "raw", "raw4": "raw", "raw6": "raw", "icmp": "raw", "icmp6": "raw",
              # Windows/psutil socket type names and IANA protocol numbers
              "sock_stream": "tcp", "sock_dgram": "udp", "sock_raw": "raw", "6": "tcp", "17": "udp",
              "1": "raw", "58": "raw"}
_FAMILIES = {"ipv4": "ipv4", "ipv6": "ipv6", "af_inet": "ipv4", "af_inet6": "ipv6", "inet": "ipv4",
             "inet6": "ipv6", "2": "ipv4", "10": "ipv6", "23": "ipv6", "4": "ipv4", "6": "ipv6"}
# Each platform spells TCP states its own way; connhunt uses the Linux/psutil names.
_STATES = {"established": "ESTABLISHED", "estab": "ESTABLISHED", "syn_sent": "SYN_SENT", "syn-sent": "SYN_SENT",
           "synsent": "SYN_SENT", "syn_recv": "SYN_RECV", "syn_rcvd": "SYN_RECV", "syn-recv": "SYN_RECV",
           "synreceived": "SYN_RECV",
           "fin_wait1": "FIN_WAIT1", "fin-wait-1": "FIN_WAIT1", "finwait1": "FIN_WAIT1",
           "fin_wait2": "FIN_WAIT2", "fin-wait-2": "FIN_WAIT2", "finwait2": "FIN_WAIT2",
           "time_wait": "TIME_WAIT", "time-wait": "TIME_WAIT", "timewait": "TIME_WAIT",
           "close": "CLOSE", "closed": "CLOSE", "close_wait": "CLOSE_WAIT", "close-wait": "CLOSE_WAIT",
           "closewait": "CLOSE_WAIT", "last_ack": "LAST_ACK", "last-ack": "LAST_ACK", "lastack": "LAST_ACK",
           "listen": "LISTEN", "closing": "CLOSING", "none": "NONE", "": "NONE", "deletetcb": "CLOSE"}


class SchemaError(ValueError):
    """A record that cannot be put into the schema; the message says which field and why."""


@dataclass(frozen=True)
class Location:
    """Where a record came from, for error messages: ``path:line``."""

    path: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


def canonical_ip(value: Any) -> str:
    """IP text in canonical form; IPv4-mapped IPv6 collapses to IPv4; a zone id is dropped."""
    if value is None or value == "":
        return ""
    text = str(value).strip().strip("[]").split("%", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError as exc:
        raise SchemaError(f"not an IP address: {value!r}") from exc
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def family_of(ip: str) -> str:
    return "ipv6" if ":" in ip else "ipv4"


def parse_time(value: Any) -> datetime | None:
    """UTC datetime from ISO 8601 text, epoch seconds (or ms/us/ns), or a datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, bool):
        raise SchemaError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
        # Velociraptor and Sysmon tools emit epoch in several units; pick the unit by magnitude.
        for limit, divisor in ((1e17, 1e9), (1e14, 1e6), (1e11, 1e3)):
            if abs(seconds) > limit:
                seconds /= divisor
                break
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text.replace(" UTC", "+00:00"))
        except ValueError:
            try:
                return parse_time(float(text))
            except (ValueError, SchemaError):
                raise SchemaError(f"not a time: {value!r}") from None
        return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise SchemaError(f"not a time: {value!r}")


def process_identity(path: str | None, name: str | None, os_name: str | None) -> str:
    """A process's identity across hosts: its normalised path (lower-cased on Windows), else its name."""
    text = (path or "").strip()
    if not text:
        return (name or "").strip().lower() or UNKNOWN_PROCESS
    if (os_name or "").lower().startswith("win") or (len(text) > 2 and text[1] == ":") or text.startswith("\\\\"):
        return text.replace("/", "\\").lower()
    return text.removesuffix(" (deleted)")


def _int(record: Mapping[str, Any], key: str, *, lo: int = 0, hi: int | None = None) -> int | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        raise SchemaError(f"field {key!r} must be an integer, got {type(value).__name__}")
    try:
        number = int(value)
    except ValueError:
        raise SchemaError(f"field {key!r} must be an integer, got {value!r}") from None
    if number < lo or (hi is not None and number > hi):
        raise SchemaError(f"field {key!r} out of range: {number}")
    return number


def _text(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, (list, dict)):
        raise SchemaError(f"field {key!r} must be text, got {type(value).__name__}")
    return str(value)


def _require(record: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if record.get(k) in (None, "")]
    if missing:
        raise SchemaError(f"missing field(s): {', '.join(missing)}")


def _prepare(record: Mapping[str, Any], default_host: str | None, required: tuple[str, ...]) -> dict[str, Any]:
    """A mutable copy of ``record`` with the default host filled in and the required fields checked."""
    if not isinstance(record, Mapping):
        raise SchemaError(f"a record must be a JSON object, got {type(record).__name__}")
    merged = dict(record)
    if default_host and not merged.get("host"):
        merged["host"] = default_host
    _require(merged, required)
    return merged


def normalise_connection(record: Mapping[str, Any], *, default_host: str | None = None,
                         default_source: str | None = None) -> dict[str, Any]:
    """One connection row of the schema from a loosely spelled record. Raises SchemaError with the reason."""
    merged = _prepare(record, default_host, CONNECTION_REQUIRED)
    protocol = _PROTOCOLS.get(str(merged["protocol"]).strip().lower())
    if protocol is None:
        raise SchemaError(f"field 'protocol' unknown: {merged['protocol']!r}")
    if protocol != "raw":  # a raw socket has no ports
        _require(merged, ("remote_port",))
    remote_ip = canonical_ip(merged.get("remote_ip"))
    local_ip = canonical_ip(merged.get("local_ip"))
    family_raw = merged.get("family")
    family = _FAMILIES.get(str(family_raw).strip().lower()) if family_raw not in (None, "") else None
    family = family or family_of(remote_ip or local_ip)
    state_raw = str(merged.get("state") or "").strip().lower()
    state = _STATES.get(state_raw, state_raw.upper())
    os_name = _text(merged, "os")
    first_seen = parse_time(merged.get("first_seen")) or parse_time(merged.get("collected_at"))
    last_seen = parse_time(merged.get("last_seen")) or first_seen
    collected_at = parse_time(merged.get("collected_at")) or last_seen
    pid = _int(merged, "pid")
    attributed_raw = merged.get("attributed")
    if attributed_raw is None:
        attributed = pid is not None and pid > 0
    elif isinstance(attributed_raw, bool):
        attributed = attributed_raw
    elif str(attributed_raw).lower() in ("true", "false", "1", "0"):  # osquery and CSV exports carry text
        attributed = str(attributed_raw).lower() in ("true", "1")
    else:
        raise SchemaError(f"field 'attributed' must be true or false, got {attributed_raw!r}")
    process_path = _text(merged, "process_path")
    process_name = _text(merged, "process_name")
    sha = _text(merged, "exe_sha256")
    return {
        "host": str(merged["host"]),
        "host_id": _text(merged, "host_id") or str(merged["host"]),
        "os": (os_name or "").lower() or None,
        "collected_at": collected_at,
        "source": _text(merged, "source") or default_source,
        "pid": pid,
        "ppid": _int(merged, "ppid"),
        "process_name": process_name,
        "process_path": process_path,
        "process_identity": process_identity(process_path, process_name, os_name),
        "command_line": _text(merged, "command_line"),
        "username": _text(merged, "username"),
        "process_start": parse_time(merged.get("process_start")),
        "parent_name": _text(merged, "parent_name"),
        "parent_path": _text(merged, "parent_path"),
        "exe_sha256": sha.lower() if sha else None,
        "protocol": protocol,
        "family": family,
        "local_ip": local_ip or None,
        "local_port": _int(merged, "local_port", hi=65535),
        "remote_ip": remote_ip,
        "remote_port": _int(merged, "remote_port", hi=65535),
        "state": state,
        "first_seen": first_seen,
        "last_seen": last_seen,
        "observations": _int(merged, "observations") or 1,
        "remote_hostname": _text(merged, "remote_hostname"),
        "attributed": attributed,
    }


def normalise_dns(record: Mapping[str, Any], *, default_host: str | None = None,
                  default_source: str | None = None) -> dict[str, Any]:
    """One dns row of the schema. Raises SchemaError with the reason."""
    merged = _prepare(record, default_host, DNS_REQUIRED)
    answers = merged.get("answers") or []
    if isinstance(answers, str):
        answers = [a for a in answers.replace(";", " ").replace(",", " ").split() if a]
    if not isinstance(answers, list):
        raise SchemaError("field 'answers' must be a list or text")
    process_path = _text(merged, "process_path")
    process_name = _text(merged, "process_name")
    server = merged.get("server_ip")
    timestamp = parse_time(merged.get("timestamp")) or parse_time(merged.get("collected_at"))
    return {
        "host": str(merged["host"]),
        "host_id": _text(merged, "host_id") or str(merged["host"]),
        "collected_at": parse_time(merged.get("collected_at")) or timestamp,
        "source": _text(merged, "source") or default_source,
        "pid": _int(merged, "pid"),
        "process_name": process_name,
        "process_path": process_path,
        "process_identity": process_identity(process_path, process_name, None),
        "query": str(merged["query"]).strip().rstrip(".").lower(),
        "qtype": (_text(merged, "qtype") or "").upper() or None,
        "answers": [str(a) for a in answers],
        "response_code": _text(merged, "response_code"),
        "server_ip": canonical_ip(server) if server else None,
        "timestamp": timestamp,
    }


def normalise_health(record: Mapping[str, Any], *, default_host: str | None = None,
                     default_source: str | None = None) -> dict[str, Any]:
    merged = dict(record)
    return {
        "host": str(merged.get("host") or default_host or ""),
        "source": _text(merged, "source") or default_source,
        "collected_at": parse_time(merged.get("collected_at")),
        "check": _text(merged, "check") or "note",
        "count": _int(merged, "count"),
        "message": _text(merged, "message") or "",
    }
