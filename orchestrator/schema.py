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
from typing import Annotated, Any, TypedDict, get_args, get_origin, get_type_hints

# The one declaration of every kind of record. Each TypedDict is a row of one table; the DuckDB DDL, the store's
# insert, the JSONL keys agent_local writes and the artifacts' column checks are derived from (or tested against)
# these, so a misspelled column is a mypy error at the edge instead of a silent NULL in a detector.
Port = Annotated[int, "INTEGER"]  # ports and counts that fit 32 bits: half the memory of BIGINT at fleet scale
Count = Annotated[int, "INTEGER"]


class SocketRow(TypedDict):
    """What every socket row starts with: where and when it was seen, who owns it (every owner field None when
    the owner could not be seen), and its local end."""

    host: str
    host_id: str
    os: str | None
    collected_at: datetime | None
    source: str | None
    pid: int | None
    ppid: int | None
    process_name: str | None
    process_path: str | None
    process_identity: str  # normalised path (lower-cased on Windows), else the name; never the pid
    command_line: str | None
    username: str | None
    process_start: datetime | None
    parent_name: str | None
    parent_path: str | None
    exe_sha256: str | None
    protocol: str  # tcp / udp / raw
    family: str  # ipv4 / ipv6
    local_ip: str | None
    local_port: Port | None


class ConnectionRow(SocketRow):
    remote_ip: str
    remote_port: Port | None
    state: str
    first_seen: datetime | None
    last_seen: datetime | None
    observations: Count
    remote_hostname: str | None
    attributed: bool
    # outbound (this host opened it), inbound (a client reached one of this host's listeners), or unknown. An
    # inbound connection is a fact about the local service, never a "destination".
    direction: str
    seen_by: str  # snapshot (a poll saw the socket) or event (a kernel/OS event reported it)
    # How the owner was found: pid (the socket table said so), inode/uid (event-only connections matched to the
    # process table of the moment), or None when unattributed.
    attribution: str | None
    stdio: bool | None  # the owner's stdin/stdout/stderr is this socket (a reverse shell); None when not checked


class ListenerRow(SocketRow):
    """A listening socket: who listens on what, since when (a bind shell is one of these)."""

    first_seen: datetime | None
    last_seen: datetime | None
    observations: Count
    attributed: bool


class DnsRow(TypedDict):
    host: str
    host_id: str
    collected_at: datetime | None
    source: str | None
    pid: int | None
    process_name: str | None
    process_path: str | None
    process_identity: str
    query: str
    qtype: str | None
    answers: list[str]  # addresses only, canonical text
    response_code: str | None
    server_ip: str | None
    timestamp: datetime | None


class HealthRow(TypedDict):
    """What a source could not see, so that the report can say so instead of hiding it."""

    host: str
    source: str | None
    collected_at: datetime | None
    check: str
    count: int | None
    message: str


# One kind -> (table, row type) mapping; JSONL's "kind" values are these keys.
KINDS: dict[str, tuple[str, type]] = {
    "connection": ("connections", ConnectionRow),
    "listener": ("listeners", ListenerRow),
    "dns": ("dns", DnsRow),
    "health": ("health", HealthRow),
}
DIRECTIONS = ("outbound", "inbound", "unknown")


def _duckdb_type(hint: Any) -> str:
    if get_origin(hint) is Annotated:
        return str(get_args(hint)[1])
    args = [a for a in get_args(hint) if a is not type(None)]
    if args and get_origin(hint) is not list:  # X | None
        return _duckdb_type(args[0])
    if get_origin(hint) is list:
        return f"{_duckdb_type(get_args(hint)[0])}[]"
    return {str: "VARCHAR", int: "BIGINT", bool: "BOOLEAN", datetime: "TIMESTAMP", float: "DOUBLE"}[hint]


def columns_of(row_type: type) -> tuple[tuple[str, str], ...]:
    """(column, DuckDB type) pairs of a row TypedDict, in declaration order."""
    return tuple((name, _duckdb_type(hint)) for name, hint in get_type_hints(row_type, include_extras=True).items())


CONNECTION_COLUMNS = columns_of(ConnectionRow)
LISTENER_COLUMNS = columns_of(ListenerRow)
DNS_COLUMNS = columns_of(DnsRow)
HEALTH_COLUMNS = columns_of(HealthRow)
TABLE_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {table: columns_of(row) for table, row in KINDS.values()}

_DIRECTIONS = {"out": "outbound", "outgoing": "outbound", "egress": "outbound", "in": "inbound",
               "incoming": "inbound", "ingress": "inbound", "": "unknown"}
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


# canonical_ip's IPv4 text as a regular expression (dotted quad, no leading zeros), for checks in SQL.
IPV4_TEXT = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"


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
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):  # out of datetime's range: a bad value, not a crash
            raise SchemaError(f"time out of range: {value!r}") from None
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
    attributed = _bool(merged, "attributed")
    if attributed is None:
        attributed = pid is not None and pid > 0
    direction = str(merged.get("direction") or "unknown").strip().lower()
    direction = _DIRECTIONS.get(direction, direction)
    if direction not in DIRECTIONS:
        raise SchemaError(f"field 'direction' unknown: {merged.get('direction')!r}")
    seen_by = str(merged.get("seen_by") or "snapshot").strip().lower()
    if seen_by not in ("snapshot", "event"):
        raise SchemaError(f"field 'seen_by' must be snapshot or event, got {merged.get('seen_by')!r}")
    return {
        **_process(merged, default_host, default_source, pid),
        "os": (os_name or "").lower() or None,
        "collected_at": collected_at,
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
        "direction": direction,
        "seen_by": seen_by,
        "attribution": _text(merged, "attribution") or ("pid" if attributed else None),
        "stdio": _bool(merged, "stdio"),
    }


def normalise_listener(record: Mapping[str, Any], *, default_host: str | None = None,
                       default_source: str | None = None) -> dict[str, Any]:
    """One listener row of the schema (a socket in LISTEN, or a bound UDP socket with no peer)."""
    merged = _prepare(record, default_host, ("host", "protocol"))
    protocol = _PROTOCOLS.get(str(merged["protocol"]).strip().lower())
    if protocol is None:
        raise SchemaError(f"field 'protocol' unknown: {merged['protocol']!r}")
    local_ip = canonical_ip(merged.get("local_ip"))
    family_raw = merged.get("family")
    family = _FAMILIES.get(str(family_raw).strip().lower()) if family_raw not in (None, "") else None
    os_name = _text(merged, "os")
    first_seen = parse_time(merged.get("first_seen")) or parse_time(merged.get("collected_at"))
    last_seen = parse_time(merged.get("last_seen")) or first_seen
    pid = _int(merged, "pid")
    attributed = _bool(merged, "attributed")
    return {
        **_process(merged, default_host, default_source, pid),
        "os": (os_name or "").lower() or None,
        "collected_at": parse_time(merged.get("collected_at")) or last_seen,
        "protocol": protocol,
        "family": family or family_of(local_ip),
        "local_ip": local_ip or None,
        "local_port": _int(merged, "local_port", hi=65535),
        "first_seen": first_seen,
        "last_seen": last_seen,
        "observations": _int(merged, "observations") or 1,
        "attributed": (pid is not None and pid > 0) if attributed is None else attributed,
    }


def _process(merged: dict[str, Any], default_host: str | None, default_source: str | None,
             pid: int | None) -> dict[str, Any]:
    """The host, source and owning-process fields every socket row shares."""
    os_name = _text(merged, "os")
    process_path = _text(merged, "process_path")
    process_name = _text(merged, "process_name")
    sha = _text(merged, "exe_sha256")
    return {
        "host": str(merged["host"]),
        "host_id": _text(merged, "host_id") or str(merged["host"]),
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
    }


def _bool(record: Mapping[str, Any], key: str) -> bool | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()  # osquery and CSV exports carry text
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise SchemaError(f"field {key!r} must be true or false, got {value!r}")


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


_NORMALISERS = {"connection": normalise_connection, "listener": normalise_listener, "dns": normalise_dns,
                "health": normalise_health}


def normalise(kind: str, record: Mapping[str, Any], *, default_host: str | None = None,
              default_source: str | None = None) -> tuple[str, dict[str, Any]]:
    """(kind, row) for a record of ``kind``; a connection that is really a listening socket becomes a listener."""
    normaliser = _NORMALISERS.get(kind)
    if normaliser is None:
        raise SchemaError(f"unknown record kind {kind!r} (expected one of {', '.join(_NORMALISERS)})")
    if kind == "connection" and str(record.get("state") or "").strip().upper() == "LISTEN":
        kind, normaliser = "listener", normalise_listener
    return kind, normaliser(record, default_host=default_host, default_source=default_source)
