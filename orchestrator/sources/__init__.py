"""Sources: each reads one wire format and yields (kind, schema row) records; none scores or prints.

``read_any`` picks the reader for a path by its content, not its name, so `connhunt score` takes any supported
file; ``input_format`` forces one by name (``FORMATS``). Each format is one registry entry: a name, a predicate over
the file's head (its first bytes, first line and first JSON value) and a reader. The first entry whose predicate
holds wins; connhunt JSONL is the fallback, whose reader says what is wrong with a file that is nothing else.
EDR/SIEM exports and network logs (Defender, Falcon, Elastic, Zeek, Fleet) are told by their first line or
record (``sniff_edr``), CSV ones by their header row.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError
from orchestrator.sources import elastic, falcon, fleet, mde, zeek
from orchestrator.sources.base import Record, json_array_items
from orchestrator.sources.jsonl import read_jsonl
from orchestrator.sources.nxlog import is_nxlog_json, read_nxlog
from orchestrator.sources.osquery import is_osquery_log, read_osquery_log, read_osqueryi_json
from orchestrator.sources.splunk import is_splunk_csv, is_splunk_json, read_splunk_csv, read_splunk_json
from orchestrator.sources.sysmon import EVTX_MAGIC, is_sysmon_json, read_evtx, read_sysmon_json
from orchestrator.sources.velociraptor_offline import ZIP_MAGICS, read_velociraptor_zip
from orchestrator.sources.winlogbeat import is_winlogbeat_json, read_winlogbeat

__all__ = ["FORMATS", "FORMAT_NAMES", "Format", "Record", "read_any", "sniff"]

Reader = Callable[..., Iterator[Record]]
# A first line longer than this is not sniffed as JSON (it is then read as connhunt JSONL, which says what is wrong).
_SNIFF_LIMIT = 64 << 20
_OSQUERY_KEYS = re.compile(rb'"(hostIdentifier|diffResults|snapshot)"\s*:')


@dataclass(frozen=True)
class Head:
    """What sniffing looks at: the first 8 bytes and the first non-blank line (BOM and blanks stripped)."""

    magic: bytes
    line: bytes
    path: Path | None = None

    @cached_property
    def json(self) -> Any:
        """The first line as JSON, or None when it is not (or is cut at the sniff limit)."""
        try:
            return json.loads(self.line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None

    @cached_property
    def edr(self) -> str | None:
        """The EDR/SIEM/network format this file is, by its first line or record (None: none of them)."""
        if self.path is None:
            return None
        found = sniff_edr(self.path, self.line)
        return found[0] if found else None


@dataclass(frozen=True)
class Format:
    name: str  # what --input-format takes
    source: str  # how the hunt's source list names what was read
    sniff: Callable[[Head], bool]
    reader: Reader


def _osquery_log(head: Head) -> bool:
    if head.json is None:  # a line cut at the sniff limit, or not JSON at all: the keys alone still tell
        return bool(_OSQUERY_KEYS.search(head.line))
    return is_osquery_log(head.json)


# (name, reader) of the EDR formats, in the order their sniffs are tried (the readers are defined below)
EDR_READERS_ORDER: tuple[tuple[str, Reader], ...] = (
    (zeek.NAME, zeek.read_zeek), (fleet.NAME, fleet.read_fleet), (falcon.NAME, falcon.read_falcon),
    (mde.NAME, mde.read_mde), (elastic.NAME, elastic.read_elastic),
)
FORMATS: tuple[Format, ...] = (
    Format("velociraptor", "velociraptor", lambda h: h.magic.startswith(ZIP_MAGICS), read_velociraptor_zip),
    Format("evtx", "evtx", lambda h: h.magic == EVTX_MAGIC, read_evtx),
    *(Format(name, name, lambda h, n=name: h.edr == n, reader) for name, reader in EDR_READERS_ORDER),
    Format("osqueryi", "osquery", lambda h: h.line.startswith(b"["), read_osqueryi_json),
    Format("osquery", "osquery", _osquery_log, read_osquery_log),
    Format("sysmon-json", "sysmon", lambda h: is_sysmon_json(h.json), read_sysmon_json),
    Format("winlogbeat", "winlogbeat", lambda h: is_winlogbeat_json(h.json), read_winlogbeat),
    Format("nxlog", "nxlog", lambda h: is_nxlog_json(h.json), read_nxlog),
    Format("splunk-json", "splunk", lambda h: is_splunk_json(h.json), read_splunk_json),
    Format("splunk-csv", "splunk", lambda h: h.json is None and is_splunk_csv(h.line), read_splunk_csv),
    Format("jsonl", "jsonl", lambda h: True, read_jsonl),
)
FORMAT_NAMES = tuple(f.name for f in FORMATS)
_BY_NAME = {f.name: f for f in FORMATS}


def read_any(path: Path, *, skip_bad: bool = False, on_skip: Callable[[str], None] | None = None,
             input_format: str | None = None) -> tuple[str, Iterator[Record]]:
    """(source name, records) for ``path``: the reader named by ``input_format``, else the one its content says."""
    if input_format is not None:
        if input_format not in _BY_NAME:
            raise InputError(f"unknown input format {input_format!r} (one of {', '.join(FORMAT_NAMES)})")
        chosen = _BY_NAME[input_format]
        name, reader = chosen.source, chosen.reader
    else:
        name, reader = sniff(path)
    return name, reader(path, skip_bad=skip_bad, on_skip=on_skip)


def sniff(path: Path) -> tuple[str, Reader]:
    """(source name, reader) for the format of ``path``'s content; connhunt JSONL when nothing else matches."""
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a file")
    try:
        with path.open("rb") as handle:
            magic = handle.read(8)
            handle.seek(0)
            first_line = handle.readline(_SNIFF_LIMIT)
            for _ in range(1000):  # leading blank lines
                if first_line.strip(b"\xef\xbb\xbf \t\r\n"):
                    break
                first_line = handle.readline(_SNIFF_LIMIT)
    except FileNotFoundError:
        return "jsonl", read_jsonl  # read_jsonl names the missing file
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None
    head = Head(magic, first_line.lstrip(b"\xef\xbb\xbf \t\r\n"), path)
    chosen = next(f for f in FORMATS if f.sniff(head))
    return chosen.source, chosen.reader


def _json(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


# EDR/SIEM exports and network logs (Defender, Falcon, Elastic, Zeek, Fleet), sniffed by content; each name is an
# entry of FORMATS (above) and so an --input-format value.
EDR_READERS: dict[str, Reader] = dict(EDR_READERS_ORDER)
_EDR_JSON_SNIFFS: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    (zeek.NAME, zeek.sniff), (fleet.NAME, fleet.sniff), (falcon.NAME, falcon.sniff), (mde.NAME, mde.sniff),
    (elastic.NAME, elastic.sniff),
)
_EDR_CSV_SNIFFS = ((mde.NAME, mde.sniff_csv_header), (falcon.NAME, falcon.sniff_csv_header))
_RECORD_KEYS = ('"_source"', '"Results"', '"results"', '"records"', '"resources"')
_EDR_SNIFF_BYTES = 1 << 20  # a pretty-printed API response shows its first record within this


def sniff_edr(path: Path, first_line: bytes) -> tuple[str, Reader] | None:
    """(name, reader) when the file is one of the EDR/SIEM/network formats, by its first line or first record."""
    if zeek.sniff_tsv(first_line):
        return zeek.NAME, zeek.read_zeek
    first = _json(first_line)
    if first is None and first_line.startswith((b"{", b"[")):
        first = _first_record(path)
    if first is not None:
        for name, predicate in _EDR_JSON_SNIFFS:
            if predicate(first):
                return name, EDR_READERS[name]
        return None
    header = first_line.decode("utf-8", errors="replace")
    for name, predicate in _EDR_CSV_SNIFFS:
        if predicate(header):
            return name, EDR_READERS[name]
    return None


def _first_record(path: Path) -> Any:
    """The first record of a JSON array or a pretty-printed document, decoded from the file's first bytes."""
    with path.open("rb") as handle:
        head = handle.read(_EDR_SNIFF_BYTES)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if text.startswith("["):
        try:
            return next((item for _, item in json_array_items(io.BytesIO(head))), None)
        except ValueError:
            return None
    # A document cut at the sniff limit: decode the first record after the earliest key that holds records.
    found = [(text.find(marker), marker) for marker in _RECORD_KEYS]
    at, marker = min(((at, marker) for at, marker in found if at >= 0), default=(-1, ""))
    start = text.find("{", at) if at >= 0 else -1
    if start < 0:
        return None
    try:
        record, _ = json.JSONDecoder().raw_decode(text[start:])
    except (ValueError, RecursionError):
        return None
    return {"hits": {"hits": [{"_source": record}]}} if marker == '"_source"' else record
