"""Sources: each reads one wire format and yields (kind, schema row) records; none scores or prints.

``read_any`` picks the reader for a path by its content, not its name, so `connhunt score` takes any supported
file: a zip is a Velociraptor collection, "ElfFile\\0" an EVTX log, and a JSON file is told apart by its first
value (an osquery results-log line, the array `osqueryi --json` prints, a Windows event, else connhunt JSONL).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError
from orchestrator.sources.base import Record
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
    except (ValueError, UnicodeDecodeError):
        return None
