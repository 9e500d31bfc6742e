"""Reads Velociraptor zips: an offline collection (`velociraptor artifacts collect --output`, an offline collector),
or a hunt export (the server's create_hunt_download: one folder per client).

A collection holds ``results/<Artifact>%2F<Source>.json`` (JSON lines, one row per line; ``.json.index`` files are
offsets, not rows), ``client_info.json`` (the endpoint's Hostname, HostID, OS), ``collection_context.json`` and
``log.json``. A hunt export holds the same per flow under ``<hostname>-<client id>/`` (its client_info.json is the
server's record: client_id, hostname, system), plus ``results/All <Artifact>%2F<Source>.json``, every client's rows
combined with ClientId columns, read only when the export has no per-client folders. Rows go through the one
Velociraptor mapping (velociraptor_rows), as a live pull's do; a hunt export's rows get the client id as host_id,
exactly as a live pull stores them.

`velociraptor artifacts collect` runs every source of an artifact whatever its precondition, so
Custom.Connhunt.Netstat's Linux, Windows and MacOS sources each hold the same sockets: only the source of the
endpoint's OS (client_info.json) is read, and a member byte-identical to one already read (same size and CRC-32)
is skipped. Both are said in health rows.
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from orchestrator.errors import InputError
from orchestrator.sources.base import BadInput, Health, OnSkip, Record, json_lines
from orchestrator.sources.velociraptor_rows import SOURCE, Endpoint, map_source

# Artifacts with one source per OS (Custom.Connhunt.Netstat), and client_info.json's OS -> that source's name.
_PER_OS_ARTIFACTS = {"Custom.Connhunt.Netstat"}
_OS_SOURCES = {"linux": "Linux", "windows": "Windows", "darwin": "MacOS"}
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_COMBINED = "All "  # a hunt export's combined results: results/All <Artifact>%2F<Source>.json
_CLIENT_FOLDER = re.compile(r"(?:^|-)(C\.[0-9A-Za-z]+)/$")


def read_velociraptor_zip(path: Path, *, skip_bad: bool = False, on_skip: OnSkip = None) -> Iterator[Record]:
    """Yield (kind, schema row) for every row of the supported artifacts in a collection zip or hunt export."""
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
        # A zip re-packed on a Mac carries AppleDouble sidecars (__MACOSX/, ._name) beside every member: metadata,
        # not rows. Skipped and counted; anything else that is not a results member (a README) is never read.
        stray = [n for n in names if n.startswith("__MACOSX/") or n.rsplit("/", 1)[-1].startswith("._")]
        if stray:
            health.note(path.stem, "stray_members", "macOS AppleDouble members (__MACOSX/, ._*) skipped",
                        len(stray))
            names = [n for n in names if n not in set(stray)]
        results = [name for name in names if _result_name(name) is not None]
        if not results:
            if any(name.rsplit("/", 1)[-1] == "data.zip" for name in names):
                raise InputError(f"{path}: an encrypted collection (data.zip inside): decrypt it first "
                                 "(velociraptor unzip with the password or private key)")
            raise InputError(f"{path}: no results/*.json in this zip: not a Velociraptor collection")
        if any(info.flag_bits & 0x1 for info in archive.infolist()):
            raise InputError(f"{path}: the zip is password-protected: extract it with the password first")
        folders = sorted({_folder(name) for name in results})
        combined = [n for n in results if _folder(n) == "" and (_result_name(n) or ("", ""))[0].startswith(_COMBINED)]
        if combined and folders != [""]:
            results = [n for n in results if n not in combined]  # the per-client folders hold the same rows
            folders = [f for f in folders if f]
        for folder in folders:
            if folders == [""] and combined and len(combined) == len(results):
                endpoint = Endpoint(path.stem, path.stem, health=health)  # each client's rows say who it is
            else:
                endpoint = _endpoint(archive, path, folder, health)
            read_members: set[tuple[str, int, int]] = set()
            for name in (n for n in results if _folder(n) == folder):
                artifact, source = _result_name(name) or ("", "")
                info = archive.getinfo(name)
                own_source = _OS_SOURCES.get(str(endpoint.os or "").lower())
                if (artifact in _PER_OS_ARTIFACTS and own_source and source in _OS_SOURCES.values()
                        and source != own_source):
                    if info.file_size:
                        health.note(endpoint.host, "other_os_source", f"{artifact} sources for other OSes than "
                                    f"{endpoint.os} not read (the same sockets, collected once per source)")
                    continue
                if info.file_size and (artifact, info.CRC, info.file_size) in read_members:
                    health.note(endpoint.host, "duplicate_source",
                                f"sources of {artifact} identical to one already read")
                    continue
                read_members.add((artifact, info.CRC, info.file_size))
                if artifact.startswith(_COMBINED):
                    yield from _read_combined(archive, path, name, endpoint, bad)
                else:
                    yield from map_source(f"{artifact}/{source}" if source else artifact,
                                          _member_rows(archive, path, name, bad), endpoint, bad)
            _note_log_errors(archive, path, folder, endpoint)
    yield from health.records()


def _folder(member: str) -> str:
    """The collection a results member belongs to: '' for a collection zip, '<hostname>-<client id>/' in a hunt
    export."""
    return member[: member.rfind("results/")]


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


def _endpoint(archive: zipfile.ZipFile, path: Path, folder: str, health: Health) -> Endpoint:
    """Who one collection of the zip is: an offline collector's client_info.json (Hostname, HostID, OS), or a hunt
    export's server record (client_id, hostname, system) whose client id becomes host_id, as in a live pull."""
    info = _load_json(archive, path, f"{folder}client_info.json")
    collection = _load_json(archive, path, f"{folder}collection_context.json")
    collected_at = collection.get("create_time") if isinstance(collection, Mapping) else None
    info = info if isinstance(info, Mapping) else {}
    match = _CLIENT_FOLDER.search(folder)
    client_id = str(info.get("client_id") or (match.group(1) if match else "")) or None
    host = str(info.get("Hostname") or info.get("hostname") or "")
    if host:
        endpoint = Endpoint(host, client_id or str(info.get("HostID") or host), info.get("OS") or info.get("system"),
                            collected_at, client_id, health)
    else:
        stem = folder.rstrip("/") or path.stem
        endpoint = Endpoint(stem, client_id or stem, None, collected_at, client_id, health)
        health.note(stem, "host_from_file_name", f"no client_info.json: host {stem!r} is the "
                    f"{'folder' if folder else 'zip'}'s name")
    # ArtifactCollectorContext.State: 2 is FINISHED; 3 ERROR, and the others mean it never completed.
    if isinstance(collection, Mapping) and collection.get("state") not in (None, 2, "FINISHED"):
        status = collection.get("status") or f"state {collection.get('state')}"
        health.note(endpoint.host, "collection_incomplete", f"the collection did not finish: {status}")
    return endpoint


def _member_rows(archive: zipfile.ZipFile, path: Path, name: str, bad: BadInput) -> Iterator[tuple[str, Any]]:
    """(where, row) for each JSON line of a results member; lines that are not JSON go to ``bad``."""
    try:
        with archive.open(name) as handle:
            for number, row, reason in json_lines(handle):
                where = f"{path}!{name}:{number}"
                if reason is not None:
                    bad(where, reason)
                    continue
                yield where, row
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise InputError(f"{path}!{name}: cannot read this member (truncated or damaged zip?): {exc}") from None


def _read_combined(archive: zipfile.ZipFile, path: Path, name: str, endpoint: Endpoint,
                   bad: BadInput) -> Iterator[Record]:
    """A hunt export's combined results: each client's rows (ClientId, Fqdn columns) mapped as that client's."""
    artifact, source = _result_name(name) or ("", "")
    by_client: dict[str, list[tuple[str, Any]]] = {}
    for where, row in _member_rows(archive, path, name, bad):
        client = str(row.get("ClientId") or "") if isinstance(row, Mapping) else ""
        by_client.setdefault(client, []).append((where, row))
    for client, rows in sorted(by_client.items()):
        first = rows[0][1] if isinstance(rows[0][1], Mapping) else {}
        host = str(first.get("host") or first.get("Fqdn") or client or endpoint.host)
        client_endpoint = Endpoint(host, client or endpoint.host_id, endpoint.os, endpoint.collected_at,
                                   client or None, endpoint.health)
        artifact_source = artifact.removeprefix(_COMBINED) + (f"/{source}" if source else "")
        yield from map_source(artifact_source, rows, client_endpoint, bad)


def _note_log_errors(archive: zipfile.ZipFile, path: Path, folder: str, endpoint: Endpoint) -> None:
    """Errors the collection itself logged (a source that failed) are what the responder could not see."""
    names = [n for n in archive.namelist()
             if n.startswith(folder) and n[len(folder):] in ("log.json", "logs.json")]
    for name in names:
        try:
            with archive.open(name) as handle:
                for _number, row, _reason in json_lines(handle):
                    if isinstance(row, Mapping) and str(row.get("level", "")).upper() == "ERROR":
                        message = " ".join(str(row.get("message", "")).split())[:200]
                        endpoint.health.note(endpoint.host, "collection_error", f"collection log: {message}")
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise InputError(f"{path}!{name}: cannot read this member (truncated or damaged zip?): {exc}") from None
