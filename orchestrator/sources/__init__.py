"""Sources: each reads one wire format and yields (kind, schema row) records; none scores or prints.

``read_any`` picks the reader for a path by its content, not its name, so `connhunt score` takes any supported
file: a zip is a Velociraptor collection, "ElfFile\\0" an EVTX log, and a JSON file is told apart by its first
value (an osquery results-log line, the array `osqueryi --json` prints, a Windows event, else connhunt JSONL).
EDR/SIEM exports and network logs (Defender, Falcon, Elastic, Zeek, Fleet) are told by their first line or record
(``sniff_edr``), CSV ones by their header row.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError
from orchestrator.sources import elastic, falcon, fleet, mde, zeek
from orchestrator.sources.base import Record, json_array_items
from orchestrator.sources.jsonl import read_jsonl
from orchestrator.sources.osquery import is_osquery_log, read_osquery_log, read_osqueryi_json
from orchestrator.sources.sysmon import EVTX_MAGIC, is_sysmon_json, read_evtx, read_sysmon_json
from orchestrator.sources.velociraptor_offline import ZIP_MAGICS, read_velociraptor_zip

__all__ = ["Record", "read_any"]

Reader = Callable[..., Iterator[Record]]
# A first line longer than this is not sniffed as JSON (it is then read as connhunt JSONL, which says what is wrong).
_SNIFF_LIMIT = 64 << 20
_OSQUERY_KEYS = re.compile(rb'"(hostIdentifier|diffResults|snapshot)"\s*:')


def read_any(path: Path, *, skip_bad: bool = False,
             on_skip: Callable[[str], None] | None = None) -> tuple[str, Iterator[Record]]:
    """(source name, records) for ``path``, the reader chosen by the file's content."""
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
    if magic.startswith(ZIP_MAGICS):
        return "velociraptor", read_velociraptor_zip
    if magic == EVTX_MAGIC:
        return "sysmon", read_evtx
    text = first_line.lstrip(b"\xef\xbb\xbf \t\r\n")
    edr = sniff_edr(path, text)
    if edr is not None:
        return edr
    if text.startswith(b"["):
        return "osquery", read_osqueryi_json
    first = _json(text)
    if first is None:
        # a line cut at the sniff limit, or not JSON at all: the keys alone still tell an osquery log
        return ("osquery", read_osquery_log) if _OSQUERY_KEYS.search(text) else ("jsonl", read_jsonl)
    if is_osquery_log(first):
        return "osquery", read_osquery_log
    if is_sysmon_json(first):
        return "sysmon", read_sysmon_json
    return "jsonl", read_jsonl


def _json(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


# --- readers-edr: EDR/SIEM exports and network logs (Defender, Falcon, Elastic, Zeek, Fleet), sniffed by content.
# A local block so it merges with the registry of formats; each name is also an --input-format value.
EDR_READERS: dict[str, Reader] = {
    mde.NAME: mde.read_mde, falcon.NAME: falcon.read_falcon, elastic.NAME: elastic.read_elastic,
    zeek.NAME: zeek.read_zeek, fleet.NAME: fleet.read_fleet,
}
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
