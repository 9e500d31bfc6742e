"""read_any picks the reader by content, not by file name; anything it does not recognise is connhunt JSONL."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.sources import read_any, sniff
from orchestrator.sources.jsonl import read_jsonl
from tests.conftest import connection
from tests.sources.helpers import DATA


@pytest.mark.parametrize(("fixture", "source"), [
    ("osquery_event.log", "osquery"), ("osquery_batch.log", "osquery"), ("osquery_snapshot.log", "osquery"),
    ("osqueryi_ws-7.json", "osquery"), ("sysmon_evtx_dump.jsonl", "sysmon"), ("sysmon_parse_evtx.jsonl", "sysmon"),
    ("sysmon_evtxhunter.jsonl", "sysmon"),
])
def test_fixtures_under_a_misleading_name(tmp_path: Path, fixture: str, source: str) -> None:
    path = tmp_path / "export.txt"
    shutil.copy(DATA / fixture, path)
    assert sniff(path)[0] == source


def test_zip_and_evtx_by_magic(tmp_path: Path) -> None:
    collection = tmp_path / "collection.json"
    with zipfile.ZipFile(collection, "w") as archive:
        archive.writestr("results/Custom.Connhunt.Netstat%2FLinux.json", "")
    assert sniff(collection)[0] == "velociraptor"
    log = tmp_path / "sysmon.log"
    log.write_bytes(b"ElfFile\x00" + bytes(100))
    assert sniff(log)[0] == "evtx"


def test_connhunt_jsonl_with_bom_and_leading_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "h1.jsonl"
    path.write_bytes(b"\xef\xbb\xbf\n\n" + json.dumps(connection()).encode() + b"\n")
    name, reader = sniff(path)
    assert (name, reader) == ("jsonl", read_jsonl)
    assert [kind for kind, _ in read_any(path)[1]] == ["connection"]


def test_osquery_line_longer_than_the_sniff_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import orchestrator.sources as sources

    monkeypatch.setattr(sources, "_SNIFF_LIMIT", 64)
    path = tmp_path / "snapshots.log"
    shutil.copy(DATA / "osquery_snapshot.log", path)
    assert sniff(path)[0] == "osquery"


def test_directory_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"^{tmp_path}: is a directory"):
        sniff(tmp_path)
