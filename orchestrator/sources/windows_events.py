"""Windows events, whatever shipped them, into schema rows: Sysmon 1/3/22 and Security (WFP) 5154/5156/5157/5158.

Each wire-shape module (sysmon.py for EVTX and evtx_dump/Velociraptor JSON, nxlog.py, winlogbeat.py, splunk.py) only
turns one unit of its input into a ``WinEvent`` (event id, provider, host, time, the event's named fields). All the
meaning lives here, once:

- Sysmon 3: ``Initiated=true`` is outbound (Source* is this host); ``Initiated=false`` is inbound, and since Sysmon
  names the initiating side Source*, the remote client is Source* and the local service Destination*.
- Sysmon 22: DNS rows; QueryResults reduced to the answers' addresses.
- Sysmon 1 (process create) is read in a first pass over the file (two passes, not a buffer: Splunk exports are
  newest first, so a process's creation can come after its connections). It fills command line, parent, ppid, start
  time and SHA-256 of the 3/22 rows by (host, ProcessGuid). Memory is one entry per process, not per event.
- WFP 5156 (permitted) and 5157 (blocked) are connections; in both directions Source* is the local side. A 5157 keeps
  ``state = "BLOCKED"``: the attempt was made (a fact about the process) but no connection exists. 5154 (listen) and
  5158 (bind) are listener rows. ``Application`` arrives as ``\\device\\harddiskvolumeN\\...``; it is mapped to a drive
  letter only when Sysmon names the same (host, pid) with the same tail (or a caller's ``volume_map`` says so), else
  kept lower-cased as a stable identity and counted in health: guessing ``C:`` would be wrong on any other volume.
- The same connection logged by Sysmon 3 and WFP 5156 (same host, pid, protocol, 5-tuple, within 2 s) is kept once,
  as the richer Sysmon row. WFP rows wait in a bounded buffer (``_PENDING_LIMIT`` events) for their Sysmon twin, so
  the match works when the two are near each other in the file, as they are in a time-ordered export.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from orchestrator.errors import InputError
from orchestrator.schema import (
    SchemaError,
    canonical_ip,
    normalise_connection,
    normalise_dns,
    normalise_listener,
    parse_time,
    process_identity,
)
from orchestrator.sources.base import (
    BadInput,
    Health,
    OnSkip,
    Record,
    as_bool,
    json_lines,
    open_input,
    windows_basename,
)

SYSMON_PROVIDER = "Microsoft-Windows-Sysmon"
SECURITY_PROVIDER = "Microsoft-Windows-Security-Auditing"
# A row's source says which sensor saw it, whichever shipper carried the event.
SYSMON_SOURCE, WFP_SOURCE = "sysmon", "wfp"
SYSMON_EVENTS = frozenset({1, 3, 22})
WFP_CONNECTION_EVENTS = frozenset({5156, 5157})
WFP_LISTENER_EVENTS = frozenset({5154, 5158})
WFP_EVENTS = WFP_CONNECTION_EVENTS | WFP_LISTENER_EVENTS
# QueryStatus is a Windows error number; these are the DNS outcomes spelled as DNS spells them.
_DNS_STATUS = {"0": "NOERROR", "9002": "SERVFAIL", "9003": "NXDOMAIN", "9501": "NODATA", "9701": "NODATA",
               "1460": "TIMEOUT", "123": "INVALID_NAME"}
# WFP's Direction is a message-table reference (%%14592 / %%14593) or, once rendered, the word.
_WFP_DIRECTIONS = {"%%14592": "inbound", "%%14593": "outbound", "inbound": "inbound", "outbound": "outbound"}
_DEVICE_PATH = re.compile(r"^(\\device\\harddiskvolume\d+)\\(.+)$", re.IGNORECASE)
_SAME_CONNECTION = timedelta(seconds=2)
_PENDING_LIMIT = 10_000  # WFP events held back for a Sysmon twin (a few KiB each): bounds memory, not correctness
_SEEN_LIMIT = 20_000  # Sysmon 3 connections remembered for a later WFP twin
_IMAGE_LIMIT = 200_000  # (host, pid) -> image entries learnt from Sysmon, for the WFP volume map
_PROCESS_LIMIT = 300_000  # process creations kept from pass 1 (a few hundred bytes each)


@dataclass(frozen=True)
class WinEvent:
    """One Windows event as any shape carries it: System fields, and EventData by name."""

    event_id: int
    host: str
    provider: str | None
    logged: Any  # System/TimeCreated in whatever form the shape has; parse_time reads each
    data: Mapping[str, Any]


class Shape(Protocol):
    """One wire shape: its units (lines, records, rows) and how one unit becomes a WinEvent."""

    source: str
    noun: str  # what a unit is, for "no readable <noun> in the file"
    markers: tuple[str, ...]  # every Sysmon Event ID 1 unit of this shape contains one: pass 1 parses only those

    def units(self, path: Path) -> Iterator[tuple[str, Any, str | None]]:
        """(where, raw unit, None), or (where, None, reason) for a unit that cannot be read at all."""
        ...

    def event(self, raw: Any) -> WinEvent | None:
        """The event of one unit; None when the unit is not an event (a header); SchemaError when malformed."""
        ...


def event_id(value: Any) -> int:
    """An EventID in any spelling: 3, "3", {"#text": 3}, {"Value": 3}."""
    if isinstance(value, Mapping):
        value = value.get("#text", value.get("Value"))
    if value is None or isinstance(value, bool) or value == "":
        raise SchemaError("no EventID")
    try:
        return int(str(value).strip())
    except ValueError:
        raise SchemaError(f"EventID is not a number: {value!r}") from None


def host_of(value: Any) -> str:
    if value is None or isinstance(value, (Mapping, list)) or not str(value).strip():
        raise SchemaError("the event names no host (Computer)")
    return str(value).strip()


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if isinstance(value, (Mapping, list)):
        raise SchemaError(f"field {key!r} must be text, got {type(value).__name__}")
    return None if value is None or value in ("", "-") else str(value)  # Windows writes "-" for "none"


def _pid(data: Mapping[str, Any], *keys: str) -> int | None:
    """A process id; WFP writes it in decimal, older exports as 0x-hex ("Pointer" type in the manifest)."""
    for key in keys:
        value = data.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise SchemaError(f"field {key!r} must be a process id, got {type(value).__name__}")
        text = str(value).strip()
        try:
            return int(text, 16) if text.lower().startswith("0x") else int(text)
        except ValueError:
            raise SchemaError(f"field {key!r} must be a process id, got {value!r}") from None
    return None


def sha256_of(hashes: str | None) -> str | None:
    """SHA256 from Sysmon's ``Hashes`` ("SHA1=..,MD5=..,SHA256=..,IMPHASH=..")."""
    for part in (hashes or "").split(","):
        name, _, value = part.partition("=")
        if name.strip().upper() == "SHA256" and re.fullmatch(r"[0-9A-Fa-f]{64}", value.strip()):
            return value.strip().lower()
    return None


def query_answers(text: str) -> list[str]:
    """The IP addresses of a Windows DNS client QueryResults string; ``type: N name`` entries (CNAME...) dropped."""
    return ip_answers(entry for entry in text.split(";") if not entry.strip().lower().startswith("type:"))


def ip_answers(entries: Iterable[Any]) -> list[str]:
    """The entries that are IP addresses, in canonical form (``::ffff:192.0.2.7`` is 192.0.2.7)."""
    answers = []
    for entry in entries:
        try:
            answer = canonical_ip(str(entry).strip()) if entry is not None else ""
        except SchemaError:
            continue  # a name where an address was expected: not an answer connhunt can match on
        if answer:
            answers.append(answer)
    return answers


def _protocol(value: str | None) -> tuple[str | None, str | None]:
    """(schema protocol, state hint) for Sysmon's "tcp"/"udp" or WFP's IANA number; other numbers are raw sockets,
    with the number kept as state PROTO_<n> the way agent_local records it."""
    if value is None:
        return None, None
    text = value.strip().lower()
    if text in ("6", "tcp"):
        return "tcp", None
    if text in ("17", "udp"):
        return "udp", None
    if text.isdigit():
        return "raw", f"PROTO_{int(text)}"
    return text, None


@dataclass
class ProcessFacts:
    """What a Sysmon Event ID 1 says about a process, keyed by (host, ProcessGuid)."""

    pid: int | None
    image: str | None
    command_line: str | None
    username: str | None
    started: datetime | None
    parent_image: str | None
    ppid: int | None
    sha256: str | None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> ProcessFacts:
        return cls(pid=_pid(data, "ProcessId"), image=_text(data, "Image"), command_line=_text(data, "CommandLine"),
                   username=_text(data, "User"), started=parse_time(_text(data, "UtcTime")),
                   parent_image=_text(data, "ParentImage"), ppid=_pid(data, "ParentProcessId"),
                   sha256=sha256_of(_text(data, "Hashes")))


class Processes:
    """Pass 1's findings: process creations by (host, guid) and images by (host, pid)."""

    def __init__(self) -> None:
        self.dropped = 0  # creations beyond _PROCESS_LIMIT: their processes' rows go without these facts
        self.by_guid: dict[tuple[str, str], ProcessFacts] = {}
        self.by_pid: dict[tuple[str, int], ProcessFacts] = {}  # for WFP, which names no ProcessGuid
        self.images: dict[tuple[str, int], str] = {}

    def add(self, event: WinEvent) -> None:
        facts = ProcessFacts.of(event.data)
        guid = _text(event.data, "ProcessGuid")
        if len(self.by_guid) >= _PROCESS_LIMIT:
            self.dropped += 1
            return
        if guid:
            self.by_guid[(event.host.lower(), guid.lower())] = facts
        if facts.pid is not None and facts.image:
            self.remember_image(event.host, facts.pid, facts.image)
            self.by_pid[(event.host.lower(), facts.pid)] = facts

    def remember_image(self, host: str, pid: int, image: str) -> None:
        if len(self.images) >= _IMAGE_LIMIT:
            self.images.pop(next(iter(self.images)))
        self.images[(host.lower(), pid)] = image


def _is_sysmon(event: WinEvent) -> bool:
    return event.provider == SYSMON_PROVIDER or (event.provider is None and event.event_id in SYSMON_EVENTS)


def _is_security(event: WinEvent) -> bool:
    return event.provider == SECURITY_PROVIDER or (event.provider is None and event.event_id in WFP_EVENTS)


class Correlator:
    """Turns WinEvents into schema records: Sysmon enrichment, the WFP volume map, Sysmon/WFP de-duplication."""

    def __init__(self, health: Health, processes: Processes, volume_map: Mapping[str, str] | None = None) -> None:
        self.health = health
        self.processes = processes
        # (host, \device\harddiskvolumeN) -> "C:"; a caller's map applies to every host
        self.volumes: dict[tuple[str, str], str] = {}
        self.default_volumes = {k.lower().rstrip("\\"): v.rstrip("\\") for k, v in (volume_map or {}).items()}
        self._seen: OrderedDict[tuple, list[datetime]] = OrderedDict()
        self._pending: OrderedDict[tuple, list[dict[str, Any]]] = OrderedDict()
        self._pending_count = 0

    def add(self, event: WinEvent) -> list[Record]:
        """The records one event yields now (WFP connections may come out later, from ``flush``)."""
        if _is_sysmon(event) and event.event_id in SYSMON_EVENTS:
            if event.event_id == 1:
                ProcessFacts.of(event.data)  # read in pass 1; checked here so that a bad one is reported, located
                return []
            if event.event_id == 3:
                return self._sysmon_connection(event)
            return [("dns", self._dns(event))]
        if _is_security(event) and event.event_id in WFP_EVENTS:
            if event.event_id in WFP_LISTENER_EVENTS:
                return [("listener", self._wfp_listener(event))]
            return self._wfp_connection(event)
        if _is_sysmon(event):
            self.health.note(event.host, "other_sysmon_events",
                             "Sysmon events other than 1 (process), 3 (network) and 22 (DNS) not read")
        elif _is_security(event):
            self.health.note(event.host, "other_security_events",
                             "Security events other than WFP 5154/5156/5157/5158 not read")
        else:
            self.health.note(event.host, "other_providers", "events of other providers not read")
        return []

    def flush(self) -> Iterator[Record]:
        while self._pending:
            yield from self._release(self._pending.popitem(last=False)[1])
        if self.processes.dropped:
            self.health.note("", "sysmon_process_facts", f"Sysmon process creations beyond {_PROCESS_LIMIT} not "
                             "used to fill command lines and hashes", self.processes.dropped)

    # --- Sysmon ---------------------------------------------------------------------------------------------------

    def _facts(self, event: WinEvent) -> ProcessFacts | None:
        guid = _text(event.data, "ProcessGuid")
        return self.processes.by_guid.get((event.host.lower(), guid.lower())) if guid else None

    def _process(self, event: WinEvent, image: str | None, pid: int | None, username: str | None) -> dict[str, Any]:
        facts = self._facts(event)
        fields: dict[str, Any] = {"pid": pid, "process_name": windows_basename(image), "process_path": image,
                                  "username": username}
        if facts is not None:
            fields.update({
                "command_line": facts.command_line, "ppid": facts.ppid, "parent_path": facts.parent_image,
                "parent_name": windows_basename(facts.parent_image), "exe_sha256": facts.sha256,
                "process_start": facts.started, "username": username or facts.username,
            })
        return fields

    def _sysmon_connection(self, event: WinEvent) -> list[Record]:
        data = event.data
        initiated = as_bool(data.get("Initiated"))
        if initiated is None:
            raise SchemaError(f"field 'Initiated' must be true or false, got {data.get('Initiated')!r}")
        image = _text(data, "Image")
        pid = _pid(data, "ProcessId")
        protocol, state = _protocol(_text(data, "Protocol"))
        ipv6 = as_bool(data.get("DestinationIsIpv6"))
        seen = _text(data, "UtcTime") or event.logged
        local, remote = ("Source", "Destination") if initiated else ("Destination", "Source")
        record = {
            "host": event.host, "os": "windows", "source": SYSMON_SOURCE, "collected_at": event.logged or seen,
            **self._process(event, image, pid, _text(data, "User")),
            "protocol": protocol, "family": None if ipv6 is None else ("ipv6" if ipv6 else "ipv4"),
            "local_ip": _text(data, f"{local}Ip"), "local_port": data.get(f"{local}Port"),
            "remote_ip": _text(data, f"{remote}Ip"), "remote_port": data.get(f"{remote}Port"),
            # Sysmon logs a TCP connection once it is made; UDP has no state.
            "state": state or ("ESTABLISHED" if protocol == "tcp" else "NONE"),
            "first_seen": seen, "last_seen": seen, "remote_hostname": _text(data, f"{remote}Hostname"),
            "direction": "outbound" if initiated else "inbound", "seen_by": "event",
        }
        row = normalise_connection(record)
        if pid is not None and image:
            self.processes.remember_image(event.host, pid, image)
        key = _key(row)
        twins = self._pending.get(key)
        if twins:
            kept = [twin for twin in twins if not _close(twin, row)]
            self._drop_twins(row["host"], len(twins) - len(kept))
            self._pending_count -= len(twins) - len(kept)
            if kept:
                self._pending[key] = kept
            else:
                del self._pending[key]
        times = self._seen.setdefault(key, [])
        times.append(row["first_seen"])
        del times[:-4]  # a 5-tuple seen again and again needs only its latest sightings
        self._seen.move_to_end(key)
        if len(self._seen) > _SEEN_LIMIT:
            self._seen.popitem(last=False)
        return [("connection", row)]

    def _dns(self, event: WinEvent) -> dict[str, Any]:
        data = event.data
        image = _text(data, "Image")
        status = _text(data, "QueryStatus")
        record = {
            "host": event.host, "source": SYSMON_SOURCE, "collected_at": event.logged or _text(data, "UtcTime"),
            "pid": _pid(data, "ProcessId"), "process_name": windows_basename(image), "process_path": image,
            "query": _text(data, "QueryName"), "answers": query_answers(_text(data, "QueryResults") or ""),
            "response_code": _DNS_STATUS.get(status or "", status), "timestamp": _text(data, "UtcTime") or event.logged,
        }
        return normalise_dns(record)

    # --- WFP ------------------------------------------------------------------------------------------------------

    def _wfp_common(self, event: WinEvent) -> dict[str, Any]:
        data = event.data
        application = _text(data, "Application")
        pid = _pid(data, "ProcessID", "ProcessId")
        protocol, state = _protocol(_text(data, "Protocol"))
        if protocol is None:
            raise SchemaError("missing field(s): Protocol")
        return {
            "host": event.host, "os": "windows", "source": WFP_SOURCE, "collected_at": event.logged,
            "pid": pid, "process_name": windows_basename(application), "process_path": application,
            "protocol": protocol, "state": state, "local_ip": _text(data, "SourceAddress"),
            "local_port": data.get("SourcePort"), "first_seen": event.logged, "last_seen": event.logged,
        }

    def _wfp_listener(self, event: WinEvent) -> dict[str, Any]:
        record = self._wfp_common(event)
        record.pop("state")
        row = normalise_listener(record)
        self._map_device_path(row)
        return row

    def _wfp_connection(self, event: WinEvent) -> list[Record]:
        direction_raw = _text(event.data, "Direction")
        direction = _WFP_DIRECTIONS.get((direction_raw or "").strip().lower())
        if direction is None:
            raise SchemaError(f"field 'Direction' must be %%14592, %%14593, Inbound or Outbound, got {direction_raw!r}")
        record = self._wfp_common(event)
        # 5157: the filter refused it. Kept as an attempt, with a state no real socket has.
        blocked = event.event_id == 5157
        state = record["state"]
        record.update({
            "remote_ip": _text(event.data, "DestAddress"), "remote_port": event.data.get("DestPort"),
            "state": "BLOCKED" if blocked and state is None else state or "NONE", "direction": direction,
            "seen_by": "event",
        })
        if record["state"] == "NONE" and record["protocol"] == "tcp":
            record["state"] = "ESTABLISHED"  # WFP permits a TCP connection at connect/accept time
        row = normalise_connection(record)
        self._learn_volume(row)  # even a row dropped as a Sysmon twin teaches its volume's drive letter
        key = _key(row)
        if any(abs(seen - row["first_seen"]) <= _SAME_CONNECTION for seen in self._seen.get(key, ())
               if seen is not None and row["first_seen"] is not None):
            self._drop_twins(row["host"], 1)
            return []
        self._pending.setdefault(key, []).append(row)
        self._pending_count += 1
        released: list[Record] = []
        while self._pending_count > _PENDING_LIMIT:
            released.extend(self._release(self._pending.popitem(last=False)[1]))
        return released

    def _drop_twins(self, host: str, count: int) -> None:
        if count:
            self.health.note(host, "wfp_seen_by_sysmon", "WFP connection events also logged by Sysmon Event ID 3 "
                                                         "(counted once, as the Sysmon row)", count)

    def _release(self, rows: list[dict[str, Any]]) -> Iterator[Record]:
        self._pending_count -= len(rows)
        for row in rows:
            self._map_device_path(row)
            yield "connection", row

    def _learn_volume(self, row: Mapping[str, Any]) -> tuple[str, str, str | None] | None:
        """(volume, rest of the path, real path) of a device path; learns the volume's drive letter when Sysmon
        named the same (host, pid) with the same tail. None for a path that is not a device path."""
        match = _DEVICE_PATH.match(row.get("process_path") or "")
        if match is None:
            return None
        volume, rest = match.group(1).lower(), match.group(2)
        host = row["host"].lower()
        image = self.processes.images.get((host, row["pid"])) if row.get("pid") is not None else None
        if image and len(image) > 2 and image[1] == ":" and image.lower().endswith("\\" + rest.lower()):
            self.volumes[(host, volume)] = image[:2].upper()
            return volume, rest, image
        return volume, rest, None

    def _map_device_path(self, row: dict[str, Any]) -> None:
        """Replace a \\device\\harddiskvolumeN\\ path by its drive-letter path where that is known; else lower-case
        it (WFP's own spelling varies in case) and say so in health."""
        learnt = self._learn_volume(row)
        if learnt is None:
            return
        volume, rest, mapped = learnt
        if mapped is None:
            drive = self.volumes.get((row["host"].lower(), volume)) or self.default_volumes.get(volume)
            mapped = f"{drive}\\{rest}" if drive else None
        if mapped is None:
            row["process_path"] = row["process_path"].lower()
            self.health.note(row["host"], "wfp_device_path",
                             "WFP application paths kept as \\device\\harddiskvolumeN\\... (no Sysmon event for "
                             "the same process named its drive letter)")
        else:
            row["process_path"] = mapped
        row["process_identity"] = process_identity(row["process_path"], row.get("process_name"), "windows")
        facts = self.processes.by_pid.get((row["host"].lower(), row["pid"]))
        # a pid is reused, so the creation's facts apply only when it is the same program
        if mapped and facts is not None and facts.image and facts.image.lower() == mapped.lower():
            row.update({"process_path": facts.image, "command_line": facts.command_line, "ppid": facts.ppid,
                        "parent_path": facts.parent_image, "parent_name": windows_basename(facts.parent_image),
                        "exe_sha256": facts.sha256, "username": row.get("username") or facts.username,
                        "process_start": facts.started})


def _key(row: Mapping[str, Any]) -> tuple:
    return (row["host"].lower(), row["pid"], row["protocol"], row["local_ip"], row["local_port"], row["remote_ip"],
            row["remote_port"])


def _close(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a["first_seen"] is not None and b["first_seen"] is not None and abs(
        a["first_seen"] - b["first_seen"]) <= _SAME_CONNECTION


def read_windows_events(path: Path, shape: Shape, *, skip_bad: bool = False, on_skip: OnSkip = None,
                        volume_map: Mapping[str, str] | None = None) -> Iterator[Record]:
    """Yield (kind, schema row) for the Sysmon and WFP events of ``path``, read as ``shape`` in two passes."""
    bad = BadInput(skip_bad, on_skip)
    health = Health(shape.source)
    correlator = Correlator(health, _process_pass(path, shape), volume_map)
    valid = invalid = 0
    for where, raw, reason in shape.units(path):
        if reason is not None:
            invalid += 1
            bad(where, reason)
            continue
        try:
            event = shape.event(raw)
            records = correlator.add(event) if event is not None else None
        except SchemaError as exc:
            invalid += 1
            bad(where, exc)
            continue
        except (OverflowError, ValueError) as exc:
            # schema.parse_time lets a time beyond datetime's range through as these; still this unit's fault
            invalid += 1
            bad(where, f"value out of range: {exc}")
            continue
        if records is not None:
            valid += 1
            yield from records
    if not valid:
        raise InputError(f"{path}: no readable {shape.noun} in the file" + (f" ({invalid} bad)" if invalid else ""))
    yield from correlator.flush()
    yield from health.records()


def _process_pass(path: Path, shape: Shape) -> Processes:
    """Pass 1: the Sysmon Event ID 1 of the file. Only units containing one of the shape's markers are parsed, so a file
    without process events costs one substring test per unit; bad units are left for pass 2 to report."""
    processes = Processes()
    markers_text = shape.markers
    markers_bytes = tuple(marker.encode() for marker in markers_text)
    for _where, raw, reason in shape.units(path):
        if reason is not None or raw is None:
            continue
        if not any(marker in raw for marker in (markers_bytes if isinstance(raw, bytes) else markers_text)):
            continue
        try:
            event = shape.event(raw)
        except SchemaError:
            continue
        if event is not None and event.event_id == 1 and _is_sysmon(event):
            try:
                processes.add(event)
            except SchemaError:
                continue
    return processes


Reader = Callable[..., Iterator[Record]]


def line_units(path: Path) -> Iterator[tuple[str, Any, str | None]]:
    """(path:line, raw bytes, None) for each non-blank line: the units of every JSON-lines shape."""
    handle = open_input(path, "a JSON-lines file of events")
    with handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                yield f"{path}:{number}", raw, None


def json_value(raw: bytes) -> Any:
    """One JSON line's value; SchemaError when it is not UTF-8 JSON, nests deeper than Python can decode, or holds
    an integer longer than Python converts (both raise other errors than JSONDecodeError)."""
    try:
        for _number, value, reason in json_lines([raw]):
            if reason is not None:
                raise SchemaError(reason)
            return value
    except RecursionError:
        raise SchemaError("JSON nested too deeply") from None
    except ValueError as exc:
        if isinstance(exc, SchemaError):
            raise
        raise SchemaError(f"malformed JSON: {exc}") from None
    raise SchemaError("blank line")


def reader_for(shape: Shape) -> Reader:
    """A ``read_any``-style reader (path, skip_bad=, on_skip=) over ``shape``."""
    def read(path: Path, *, skip_bad: bool = False, on_skip: OnSkip = None,
             volume_map: Mapping[str, str] | None = None) -> Iterator[Record]:
        return read_windows_events(path, shape, skip_bad=skip_bad, on_skip=on_skip, volume_map=volume_map)

    read.__name__ = f"read_{shape.source}"
    return read


# Sysmon 3 and WFP 5156 of one host usually arrive as two files (Sysmon.evtx and Security.evtx): the reader's
# buffer cannot see across them, so once every file is in the store the same rule is applied in SQL.
_WFP_TWINS = """
CREATE OR REPLACE TEMP TABLE wfp_twins AS
SELECT w.rowid AS id, w.host FROM {table} w
WHERE w.source = 'wfp' AND EXISTS (
    SELECT 1 FROM {table} s
    WHERE s.source = 'sysmon' AND lower(s.host) = lower(w.host) AND s.pid = w.pid AND s.protocol = w.protocol
      AND s.local_ip IS NOT DISTINCT FROM w.local_ip AND s.local_port IS NOT DISTINCT FROM w.local_port
      AND s.remote_ip = w.remote_ip AND s.remote_port IS NOT DISTINCT FROM w.remote_port
      AND abs(epoch(s.first_seen) - epoch(w.first_seen)) <= 2)
"""


def drop_wfp_twins(con: Any, table: str = "connections") -> list[Record]:
    """Delete from the stored connections (``table``, the store's own table, not a view in front of it) each WFP
    row whose Sysmon 3 twin came from another file; health records counting them per host. ``con`` is the store's
    DuckDB connection."""
    if not con.execute(f"SELECT count(*) FROM {table} WHERE source = 'wfp' LIMIT 1").fetchone()[0]:
        return []
    con.execute(_WFP_TWINS.format(table=table))
    counts = con.execute("SELECT host, count(*) FROM wfp_twins GROUP BY host ORDER BY host").fetchall()
    con.execute(f"DELETE FROM {table} WHERE rowid IN (SELECT id FROM wfp_twins)")
    con.execute("DROP TABLE wfp_twins")
    health = Health(WFP_SOURCE)
    for host, count in counts:
        health.note(host, "wfp_seen_by_sysmon", "WFP connection events also logged by Sysmon Event ID 3 "
                                                "(counted once, as the Sysmon row)", int(count))
    return list(health.records())
