"""Reads abuse.ch ThreatFox exports: the CSV export and the JSON export (and the API's ``get_iocs`` answer).

CSV (https://threatfox.abuse.ch/export/): a ``#`` banner whose last line is the commented-out header
``# "first_seen_utc","ioc_id","ioc_value","ioc_type","threat_type","fk_malware","malware_alias",
"malware_printable","last_seen_utc","confidence_level",...,"reference","tags","anonymous","reporter"``, then one row
per IOC with fields quoted and separated by ``", "``; columns are taken from that header, so exports with extra
columns (``is_compromised``) read the same. The JSON export is an object keyed by IOC id, each value a list of one
IOC object with the same fields (``malware`` for ``fk_malware``); the API (https://threatfox.abuse.ch/api/) answers
``{"query_status": "ok", "data": [...]}`` with ``id``, ``ioc``, ``first_seen``, ``last_seen`` and a list of tags.
``ioc_type`` is ``ip:port``, ``domain``, ``url``, ``md5_hash``, ``sha1_hash`` or ``sha256_hash``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError
from orchestrator.intel.abusech import csv_rows
from orchestrator.intel.model import IocRow, Notes, address_kind, canonical_domain, ioc_row, split_port
from orchestrator.schema import SchemaError

HEADER = ("first_seen_utc", "ioc_id", "ioc_value")
_HASHES = {"md5_hash": "md5", "sha1_hash": "sha1", "sha256_hash": "sha256"}


def read_threatfox_csv(path: Path, notes: Notes) -> Iterator[IocRow]:
    for number, row in csv_rows(path, HEADER):
        where = f"{path}:{number}"
        try:
            yield _row(row, where, notes, source_file=str(path), source_format="threatfox-csv", source_line=number)
        except _Skip:
            continue


def is_threatfox_json(document: Any) -> bool:
    if isinstance(document, Mapping) and "query_status" in document and "data" in document:
        return True
    if not isinstance(document, Mapping) or not document:
        return False
    first = next(iter(document.values()))
    return isinstance(first, list) and bool(first) and isinstance(first[0], Mapping) and "ioc_value" in first[0]


def read_threatfox_json(path: Path, document: Any, notes: Notes) -> Iterator[IocRow]:
    for ioc_id, entry in _entries(path, document):
        where = f"{path}: IOC {ioc_id}"
        if not isinstance(entry, Mapping):
            raise InputError(f"{where}: expected a JSON object, got {type(entry).__name__}")
        tags = entry.get("tags")
        row = {"ioc_id": ioc_id, "ioc_value": entry.get("ioc_value", entry.get("ioc")),
               "ioc_type": entry.get("ioc_type"), "threat_type": entry.get("threat_type"),
               "fk_malware": entry.get("malware"), "malware_printable": entry.get("malware_printable"),
               "first_seen_utc": entry.get("first_seen_utc", entry.get("first_seen")),
               "last_seen_utc": entry.get("last_seen_utc", entry.get("last_seen")),
               "confidence_level": entry.get("confidence_level"), "reference": entry.get("reference"),
               "tags": ",".join(map(str, tags)) if isinstance(tags, list) else tags}
        try:
            yield _row(row, where, notes, source_file=str(path), source_format="threatfox-json")
        except _Skip:
            continue


def _entries(path: Path, document: Any) -> Iterator[tuple[str, Any]]:
    if "query_status" in document:
        data = document.get("data")
        if not isinstance(data, list):  # "no_result" answers carry a message instead of a list
            raise InputError(f"{path}: ThreatFox answer {document.get('query_status')!r} holds no IOC list")
        for index, entry in enumerate(data):
            yield str(entry.get("id") if isinstance(entry, Mapping) and entry.get("id") else f"#{index}"), entry
        return
    for ioc_id, entries in document.items():
        if not isinstance(entries, list):
            raise InputError(f"{path}: IOC {ioc_id}: expected a list of IOC objects, got {type(entries).__name__}")
        for entry in entries:
            yield str(ioc_id), entry


class _Skip(Exception):
    """The row was counted in the notes and yields nothing."""


def _row(row: Mapping[str, Any], where: str, notes: Notes, **fields: Any) -> IocRow:
    ioc_type = str(row.get("ioc_type") or "")
    value = str(row.get("ioc_value") or "")
    port = None
    try:
        if ioc_type == "ip:port":
            value, port = split_port(value)
            kind = address_kind(value)
        elif ioc_type == "domain":
            kind = "domain"
            canonical_domain(value)
        elif ioc_type == "url":
            kind = "url"
        elif ioc_type in _HASHES:
            kind = _HASHES[ioc_type]
        else:
            notes.skip(where, f"ioc_type {ioc_type!r} is not matchable")
            raise _Skip
        tags = [t.strip() for t in str(row.get("tags") or "").split(",") if t.strip() and t.strip() != "None"]
        threat_type = row.get("threat_type")
        return ioc_row(kind, value, port=port, indicator_id=row.get("ioc_id"),
                       name=row.get("malware_printable") or row.get("fk_malware"), description=threat_type,
                       confidence=row.get("confidence_level"), first_seen=row.get("first_seen_utc"),
                       last_seen=row.get("last_seen_utc"), tags=tags, reference=row.get("reference"), **fields)
    except SchemaError as exc:
        notes.skip(where, str(exc).split(":", 1)[0])
        raise _Skip from None
