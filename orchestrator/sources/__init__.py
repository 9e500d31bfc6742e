"""Sources: each reads one wire format and yields (kind, schema row) records; none scores or prints.

``read_any`` picks the reader for a path by its content, not its name, so `connhunt score` takes any supported
file; ``input_format`` forces one by name (``FORMATS``). Each format is one registry entry: a name, a predicate over
the file's head (its first bytes, first line and first JSON value) and a reader. The first entry whose predicate
holds wins; connhunt JSONL is the fallback, whose reader says what is wrong with a file that is nothing else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError
from orchestrator.sources.base import Record
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

    @cached_property
    def json(self) -> Any:
        """The first line as JSON, or None when it is not (or is cut at the sniff limit)."""
        try:
            return json.loads(self.line)
        except (ValueError, UnicodeDecodeError):
            return None


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


FORMATS: tuple[Format, ...] = (
    Format("velociraptor", "velociraptor", lambda h: h.magic.startswith(ZIP_MAGICS), read_velociraptor_zip),
    Format("evtx", "evtx", lambda h: h.magic == EVTX_MAGIC, read_evtx),
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
    head = Head(magic, first_line.lstrip(b"\xef\xbb\xbf \t\r\n"))
    chosen = next(f for f in FORMATS if f.sniff(head))
    return chosen.source, chosen.reader
