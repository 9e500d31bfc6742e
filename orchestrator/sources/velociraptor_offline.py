"""Reads a Velociraptor collection zip (an offline collector's output, or `velociraptor artifacts collect --output`).

The zip holds ``results/<Artifact>%2F<Source>.json`` (JSON lines, one row per line; ``.json.index`` files are
offsets, not rows), ``client_info.json`` (the endpoint's Hostname, HostID, OS), ``collection_context.json`` and
``log.json``. connhunt's own artifacts already emit the schema's columns; the stock Linux.Network.Netstat and
Windows.Network.NetstatEnriched are mapped here. Rows of any other artifact are counted in a health row, not read.

`velociraptor artifacts collect` runs every source of an artifact whatever its precondition, so
Custom.Connhunt.Netstat's Linux, Windows and MacOS sources each hold the same sockets: only the source of the
endpoint's OS (client_info.json) is read, and a member byte-identical to one already read (same size and CRC-32)
is skipped. Both are said in health rows.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from orchestrator.errors import InputError
from orchestrator.schema import SchemaError, normalise_connection, normalise_dns, parse_time
from orchestrator.sources.base import BadInput, Health, OnSkip, Record, as_bool, blank_to_none, json_lines
from orchestrator.sources.sysmon import ip_answers

SOURCE = "velociraptor"
# Artifacts with one source per OS (Custom.Connhunt.Netstat), and client_info.json's OS -> that source's name.
_PER_OS_ARTIFACTS = {"Custom.Connhunt.Netstat"}
_OS_SOURCES = {"linux": "Linux", "windows": "Windows", "darwin": "MacOS"}
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")

Mapper = Callable[[Mapping[str, Any], "Context"], Record | None]


class Context:
    """What a row mapper needs besides the row: the endpoint's identity and where to count what it skips."""

    def __init__(self, host: str, host_id: str, os_name: str | None, collected_at: Any, health: Health) -> None:
        self.host, self.host_id, self.os, self.collected_at, self.health = host, host_id, os_name, collected_at, health

    def defaults(self) -> dict[str, Any]:
        return {"host": self.host, "host_id": self.host_id, "collected_at": self.collected_at, "source": SOURCE}


def read_velociraptor_zip(path: Path, *, skip_bad: bool = False, on_skip: OnSkip = None) -> Iterator[Record]:
    """Yield (kind, schema row) for every row of the supported artifacts in a collection zip."""
    bad = BadInput(skip_bad, on_skip)
    health = Health(SOURCE)
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise InputError(f"{path}: cannot open: No such file or directory") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable zip (truncated or damaged?): {exc}") from None
    with archive:
        names = archive.namelist()
        results = [name for name in names if _result_name(name) is not None]
        if not results:
            if any(name.rsplit("/", 1)[-1] == "data.zip" for name in names):
                raise InputError(f"{path}: an encrypted collection (data.zip inside): decrypt it first "
                                 "(velociraptor unzip with the password or private key)")
            raise InputError(f"{path}: no results/*.json in this zip: not a Velociraptor collection")
        if any(info.flag_bits & 0x1 for info in archive.infolist()):
            raise InputError(f"{path}: the zip is password-protected: extract it with the password first")
        context = _context(archive, path, health)
        read_members: set[tuple[str, int, int]] = set()
        for name in results:
            artifact, source = _result_name(name) or ("", "")
            info = archive.getinfo(name)
            own_source = _OS_SOURCES.get(str(context.os or "").lower())
            if artifact in _PER_OS_ARTIFACTS and own_source and source in _OS_SOURCES.values() and source != own_source:
                if info.file_size:
                    health.note(context.host, "other_os_source", f"{artifact} sources for other OSes than "
                                f"{context.os} not read (the same sockets, collected once per source)")
                continue
            if info.file_size and (artifact, info.CRC, info.file_size) in read_members:
                health.note(context.host, "duplicate_source", f"sources of {artifact} identical to one already read")
                continue
            read_members.add((artifact, info.CRC, info.file_size))
            yield from _read_member(archive, path, name, context, bad)
        _note_log_errors(archive, path, context)
    yield from health.records()


def _result_name(member: str) -> tuple[str, str] | None:
    """(artifact, source) of a results member, e.g. results/Custom.Connhunt.Netstat%2FLinux.json."""
    head, sep, tail = member.rpartition("results/")
    if not sep or (head and not head.endswith("/")) or not tail.endswith(".json"):
        return None
    name = unquote(tail.removesuffix(".json"))
    artifact, _, source = name.partition("/")
    return artifact, source


def _load_json(archive: zipfile.ZipFile, path: Path, name: str) -> Any:
    """A metadata member, or None when it is absent or not JSON (the rows can still be read without it)."""
    try:
        return json.loads(archive.read(name))
    except (KeyError, ValueError):
        return None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise InputError(f"{path}!{name}: cannot read this member (truncated or damaged zip?): {exc}") from None


def _context(archive: zipfile.ZipFile, path: Path, health: Health) -> Context:
    info = _load_json(archive, path, "client_info.json")
    collection = _load_json(archive, path, "collection_context.json")
    collected_at = collection.get("create_time") if isinstance(collection, Mapping) else None
    if isinstance(info, Mapping) and info.get("Hostname"):
        host = str(info["Hostname"])
        context = Context(host, str(info.get("HostID") or host), info.get("OS"), collected_at, health)
    else:
        context = Context(path.stem, path.stem, None, collected_at, health)
        health.note(path.stem, "host_from_file_name", f"no client_info.json: host {path.stem!r} is the zip's name")
    # ArtifactCollectorContext.State: 2 is FINISHED; 3 ERROR, and the others mean it never completed.
    if isinstance(collection, Mapping) and collection.get("state") not in (None, 2, "FINISHED"):
        status = collection.get("status") or f"state {collection.get('state')}"
        health.note(context.host, "collection_incomplete", f"the collection did not finish: {status}")
    return context


def _read_member(archive: zipfile.ZipFile, path: Path, name: str, context: Context,
                 bad: BadInput) -> Iterator[Record]:
    artifact, source = _result_name(name) or ("", "")
    mapper = _mapper(artifact, source)
    if mapper is None:
        if archive.getinfo(name).file_size:
            context.health.note(context.host, "unknown_artifact",
                                f"rows of artifact {artifact} not read: connhunt does not know its columns")
        return
    try:
        with archive.open(name) as handle:
            for number, row, reason in json_lines(handle):
                where = f"{path}!{name}:{number}"
                if reason is not None:
                    bad(where, reason)
                    continue
                if not isinstance(row, Mapping):
                    bad(where, f"expected a JSON object, got {type(row).__name__}")
                    continue
                try:
                    record = mapper(row, context)
                except SchemaError as exc:
                    bad(where, exc)
                    continue
                if record is not None:
                    yield record
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise InputError(f"{path}!{name}: cannot read this member (truncated or damaged zip?): {exc}") from None


def _note_log_errors(archive: zipfile.ZipFile, path: Path, context: Context) -> None:
    """Errors the collection itself logged (a source that failed) are what the responder could not see."""
    names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] in ("log.json", "logs.json")]
    for name in names:
        try:
            with archive.open(name) as handle:
                for _number, row, _reason in json_lines(handle):
                    if isinstance(row, Mapping) and str(row.get("level", "")).upper() == "ERROR":
                        message = " ".join(str(row.get("message", "")).split())[:200]
                        context.health.note(context.host, "collection_error", f"collection log: {message}")
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise InputError(f"{path}!{name}: cannot read this member (truncated or damaged zip?): {exc}") from None


def _schema_connection(row: Mapping[str, Any], context: Context) -> Record | None:
    record = {**context.defaults(), "os": context.os, **blank_to_none(dict(row))}
    record["source"] = SOURCE if row.get("source") in (None, "", "velociraptor") else row["source"]
    attributed = as_bool(record.get("attributed"))
    if attributed is None:
        record.pop("attributed", None)
    else:
        record["attributed"] = attributed
    return "connection", normalise_connection(record)


def _schema_dns(row: Mapping[str, Any], context: Context) -> Record | None:
    record = {**context.defaults(), **blank_to_none(dict(row))}
    record["source"] = SOURCE if row.get("source") in (None, "", "velociraptor") else row["source"]
    answers = record.get("answers")
    if isinstance(answers, list):
        if record["source"] == "sysmon":
            # The artifact splits QueryResults but keeps CNAME names and ::ffff: prefixes: read as sysmon.py does.
            record["answers"] = ip_answers(answers)
        else:  # addresses in canonical form, so that they match connections' remote_ip; names kept
            record["answers"] = [(ip_answers([a]) or [a])[0] for a in answers if a not in (None, "")]
    return "dns", normalise_dns(record)


# Linux.Network.Netstat names the kernel's TCP states (include/net/tcp_states.h) in words.
_LINUX_STATES = {"Established": "ESTABLISHED", "Syn Sent": "SYN_SENT", "Time Wait": "TIME_WAIT",
                 "Listening": "LISTEN"}


def _linux_netstat(row: Mapping[str, Any], context: Context) -> Record | None:
    state = _LINUX_STATES.get(str(row.get("State")), str(row.get("State") or ""))
    if state == "LISTEN" or str(row.get("RemotePort")) == "0":
        context.health.note(context.host, "not_connected", "listening sockets not read")
        return None
    process = row.get("ProcessInfo") if isinstance(row.get("ProcessInfo"), Mapping) else {}
    command_line = process.get("CommandLine")
    record = {**context.defaults(), "os": "linux", "protocol": "tcp", "pid": process.get("Pid") or 0,
              # /proc/PID/comm ends in a newline; /proc/PID/cmdline separates arguments with NULs
              "process_name": (process.get("Command") or "").strip() or None,
              "command_line": " ".join(command_line.split("\x00")).strip() or None
              if isinstance(command_line, str) else None,
              "local_ip": row.get("LocalAddr"), "local_port": row.get("LocalPort"),
              "remote_ip": row.get("RemoteAddr"), "remote_port": row.get("RemotePort"), "state": state}
    return "connection", normalise_connection(record)


def _first(value: Any) -> Any:
    """A VQL subquery column: its one value (Velociraptor writes one row of one column as the bare value)."""
    if isinstance(value, list):
        value = value[0] if value else None
        if isinstance(value, Mapping) and len(value) == 1:
            value = next(iter(value.values()))
    return value


def _netstat_enriched(row: Mapping[str, Any], context: Context) -> Record | None:
    status = str(row.get("Status") or "")
    if status == "LISTEN" or str(row.get("Rport")) == "0":
        context.health.note(context.host, "not_connected", "listening or unconnected sockets not read")
        return None
    hashes = _first(row.get("Hash"))
    record = {**context.defaults(), "os": "windows", "pid": row.get("Pid"), "ppid": _first(row.get("Ppid")),
              "process_name": _first(row.get("Name")), "process_path": _first(row.get("Path")),
              "command_line": _first(row.get("CommandLine")), "username": _first(row.get("Username")),
              "exe_sha256": hashes.get("SHA256") if isinstance(hashes, Mapping) else None,
              "protocol": row.get("Type"), "family": row.get("Family"), "local_ip": row.get("Laddr"),
              "local_port": row.get("Lport"), "remote_ip": row.get("Raddr"), "remote_port": row.get("Rport"),
              "state": {"ESTAB": "ESTABLISHED", "SYN_RCVD": "SYN_RECV", "DELETE": "CLOSE"}.get(status, status),
              "first_seen": _creation_time(row.get("Timestamp"))}
    return "connection", normalise_connection(blank_to_none(record))


def _creation_time(value: Any) -> Any:
    """Windows' socket creation time; a socket without one has the zero FILETIME (year 1601), which is no time."""
    try:
        parsed = parse_time(value)
    except SchemaError:
        return None
    return parsed if parsed is not None and parsed.year >= 1990 else None


def _mapper(artifact: str, source: str) -> Mapper | None:
    if artifact in ("Custom.Connhunt.Netstat", "Custom.Connhunt.Monitor"):
        return _schema_connection
    if artifact == "Custom.Connhunt.Windows.SysmonNetwork":
        return _schema_dns if source == "DNS" else _schema_connection
    if artifact == "Custom.Connhunt.DNS":
        return _schema_dns
    if artifact == "Linux.Network.Netstat":
        return _linux_netstat
    if artifact == "Windows.Network.NetstatEnriched":
        return _netstat_enriched
    return None
