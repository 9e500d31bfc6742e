"""Threat-intel IOCs from the responder's offline files, in one typed table the threat-intel detector joins.

``load_intel(paths)`` reads each file by its content, not its name: a JSON document is a STIX bundle
(``"type": "bundle"``), a MISP event (``{"Event": ...}``, or a REST search's ``{"response": [...]}``), a MISP feed's
``manifest.json`` (its events read from the files beside it) or a ThreatFox JSON export / API answer; a text file
is a ThreatFox CSV export (its ``# "first_seen_utc","ioc_id","ioc_value",...`` header), a Feodo Tracker
``ipblocklist.csv`` (``"first_seen_utc","dst_ip",...``), Feodo Tracker's ``ipblocklist.txt`` (its banner) or a
plain one-IOC-per-line list. Structural damage (malformed JSON, a truncated CSV row, a wrong schema) is an
InputError naming ``file:line`` (or the STIX object id / MISP attribute index); a single indicator that cannot be
matched is skipped and counted in one note per reason; a file that yields no IOC at all is an InputError.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError
from orchestrator.intel.abusech import is_header
from orchestrator.intel.feodo import HEADER as FEODO_HEADER
from orchestrator.intel.feodo import read_feodo_csv
from orchestrator.intel.misp import is_misp_event, is_misp_manifest, read_misp, read_misp_manifest
from orchestrator.intel.model import IOC_COLUMNS, IOC_KINDS, IocRow, Notes, OnNote
from orchestrator.intel.plain import read_plain
from orchestrator.intel.text import comment_text
from orchestrator.intel.threatfox import HEADER as THREATFOX_HEADER
from orchestrator.intel.threatfox import is_threatfox_json, read_threatfox_csv, read_threatfox_json
from orchestrator.sources.base import open_input

__all__ = ["IOC_COLUMNS", "IOC_KINDS", "IocRow", "load_intel", "sniff"]

Loader = Callable[[Path, Notes], Iterator[IocRow]]


def is_stix_bundle(document: Any) -> bool:
    return isinstance(document, dict) and document.get("type") == "bundle"


def read_stix(path: Path, document: Any, notes: Notes) -> Iterator[IocRow]:
    # stix2 takes a tenth of a second to import: only a run that reads a STIX bundle pays for it
    from orchestrator.intel import stix

    return stix.read_stix(path, document, notes)


_HEAD_LINES = 64  # a banner and header row come first; this many lines decide a text format
_MISP_HASHES = re.compile(r"[0-9a-f]{32},[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_FEODO_TXT = re.compile(r"abuse\.ch Feodo Tracker Botnet C2 IP Blocklist")  # the banner of ipblocklist*.txt


def load_intel(paths: Iterable[str | Path], *, on_note: OnNote = None) -> Iterator[IocRow]:
    """Every IOC of every file in ``paths``; ``on_note`` receives one line per reason indicators were skipped."""
    for raw in paths:
        path = Path(raw)
        name, loader = sniff(path)
        notes = Notes(str(path))
        count = 0
        for row in loader(path, notes):
            count += 1
            yield row
        if not count:
            why = "; ".join(line.split(": ", 1)[1] for line in notes.lines()) or "the file holds no indicator"
            raise InputError(f"{path}: no IOC in this {name} file ({why})")
        if on_note:
            for line in notes.lines():
                on_note(line)


def sniff(path: Path) -> tuple[str, Loader]:
    """(format name, loader) for ``path`` by its content; an InputError when it is no intel format connhunt reads."""
    with open_input(path, "an intel file") as handle:
        head = handle.read(1 << 16)
        if head.startswith((b"PK\x03\x04", b"\x1f\x8b")):
            raise InputError(f"{path}: {_archive(path, head)}")
        if not head.lstrip(b"\xef\xbb\xbf \t\r\n"):
            raise InputError(f"{path}: empty file, no IOC")
        if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"["):
            return _sniff_json(path, head + handle.read())
    lines = head.decode("utf-8", errors="replace").splitlines()[:_HEAD_LINES]
    if any(is_header(line, THREATFOX_HEADER) for line in lines):
        return "ThreatFox CSV", read_threatfox_csv
    if any(is_header(line, FEODO_HEADER) for line in lines):
        return "Feodo Tracker CSV", read_feodo_csv
    data = [line.strip() for line in lines if line.strip() and comment_text(line) is None]
    if data and _MISP_HASHES.fullmatch(data[0]):
        raise InputError(f"{path}: a MISP feed's hashes.csv holds MD5 digests of values, not the values; "
                         "give the feed's manifest.json (or its event files) instead")
    banner = next((text for line in lines if (text := comment_text(line)) and _FEODO_TXT.search(text)), None)
    if banner:
        title = banner.strip("# ").strip()

        def feodo_txt(p: Path, notes: Notes) -> Iterator[IocRow]:
            return read_plain(p, notes, source_format="feodo-txt", description=title)

        return "Feodo Tracker list", feodo_txt
    return "IOC list", read_plain


def _archive(path: Path, head: bytes) -> str:
    """What to do with a compressed download (ThreatFox and abuse.ch offer zips): unpack it first, by name."""
    if head.startswith(b"\x1f\x8b"):
        return "a gzip file; gunzip it and give connhunt the file inside"
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info.filename for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError):
        members = []
    inside = f": {', '.join(members[:5])}" if members else ""
    return f"a zip archive; unzip it and give connhunt the file(s) inside{inside}"


def _sniff_json(path: Path, data: bytes) -> tuple[str, Loader]:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply") from None
    for name, test, reader in _JSON_FORMATS:
        if test(document):
            return name, _bound(reader, document)
    raise InputError(f"{path}: JSON, but not a STIX bundle, MISP event or feed manifest, or ThreatFox export")


def _bound(reader: Callable[[Path, Any, Notes], Iterator[IocRow]], document: Any) -> Loader:
    return lambda path, notes: reader(path, document, notes)


_JSON_FORMATS: tuple[tuple[str, Callable[[Any], bool], Callable[[Path, Any, Notes], Iterator[IocRow]]], ...] = (
    ("STIX bundle", is_stix_bundle, read_stix),
    ("MISP event", is_misp_event, read_misp),
    ("ThreatFox JSON", is_threatfox_json, read_threatfox_json),
    ("MISP feed manifest", is_misp_manifest, read_misp_manifest),
)
