"""Bad intel input: one InputError line naming file:line (or STIX object / MISP attribute), never a traceback."""

from __future__ import annotations

import gzip
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.intel import load_intel
from tests.intel.helpers import DATA, load


def error_of(*paths: Path) -> str:
    with pytest.raises(InputError) as caught:
        list(load_intel(paths))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    path.write_text('{"type": "bundle",\n "objects": [\n {"type": "indicator",, }]}\n')
    assert error_of(path) == f"{path}:3: malformed JSON: Expecting property name enclosed in double quotes (column 23)"


def test_truncated_json_file(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_bytes((DATA / "misp_event.json").read_bytes()[:900])
    assert error_of(path).startswith(f"{path}:")
    assert "malformed JSON" in error_of(path)


def test_truncated_threatfox_row(tmp_path: Path) -> None:
    path = tmp_path / "full.csv"
    lines = (DATA / "threatfox_recent.csv").read_bytes().split(b"\r\n")
    path.write_bytes(b"\r\n".join(lines[:11]) + b"\r\n" + lines[11][:60])  # cut inside a quoted field
    assert error_of(path) == f"{path}:12: unbalanced quotes (truncated line?)"


def test_threatfox_row_with_missing_fields(tmp_path: Path) -> None:
    path = tmp_path / "full.csv"
    text = (DATA / "threatfox_recent.csv").read_text()
    path.write_text(text.replace('"False", "None", "ClearFake,windows", "1", "anonymous"', '"False"'))
    assert error_of(path) == f"{path}:11: 11 field(s) where the header has 15 (truncated line?)"


def test_feodo_data_before_its_header(tmp_path: Path) -> None:
    path = tmp_path / "ipblocklist.csv"
    path.write_text('"2026-01-17 07:30:05","198.51.100.61","443","offline","2026-11-18","Dridex"\n'
                    '"first_seen_utc","dst_ip","dst_port","c2_status","last_online","malware"\n')
    assert error_of(path) == f"{path}:1: a data row before the header row (first_seen_utc, dst_ip, ...)"


def test_text_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(b"198.51.100.1\n198.51.100.2\n\xff\xfe\n")
    assert error_of(path) == f"{path}:3: not UTF-8 text (byte 0)"


def test_unknown_json_shape(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"hello": "world"}))
    assert error_of(path) == (f"{path}: JSON, but not a STIX bundle, MISP event or feed manifest, "
                              "or ThreatFox export")


def test_empty_missing_and_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert error_of(empty) == f"{empty}: empty file, no IOC"
    missing = tmp_path / "missing.txt"
    assert error_of(missing) == f"{missing}: cannot open: No such file or directory"
    assert error_of(tmp_path) == f"{tmp_path}: is a directory, expected an intel file"


def test_a_file_without_any_ioc_says_why(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("# my notes\nsee the report\nlocalhost\n")
    assert error_of(path) == (
        f"{path}: no IOC in this IOC list file (skipped 1 indicator(s): more than one value on a line "
        f"(first at {path}:2); skipped 1 indicator(s): not an IP address, network, domain, URL or hash "
        f"(first at {path}:3))")
    comments = tmp_path / "comments.txt"
    comments.write_text("# nothing but a comment\n")
    assert error_of(comments) == f"{comments}: no IOC in this IOC list file (the file holds no indicator)"


def test_rows_of_earlier_files_come_before_the_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("# empty\n")
    seen = []
    with pytest.raises(InputError):
        for row in load_intel([DATA / "feodo_ipblocklist.txt", bad]):
            seen.append(row["value"])
    assert seen == ["198.51.100.61", "198.51.100.62"]


def test_misp_structure_errors_name_the_attribute(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"Event": {"info": "x", "Attribute": {"type": "ip-dst"}}}))
    assert error_of(path) == f"{path}: Event.Attribute: expected a list, got dict"
    path.write_text(json.dumps({"Event": {"info": "x", "Attribute": [
        {"type": "ip-dst", "value": "192.0.2.1", "to_ids": True}, "192.0.2.2"]}}))
    assert error_of(path) == f"{path}: Event.Attribute[1]: expected a MISP attribute object"
    path.write_text(json.dumps({"Event": {"info": "x", "Object": [{"Attribute": [7]}]}}))
    assert error_of(path) == f"{path}: Event.Object[0].Attribute[0]: expected a MISP attribute object"


def test_misp_bad_values_are_counted_by_attribute_index(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"Event": {"info": "x", "Attribute": [
        {"type": "ip-dst", "value": "192.0.2.1", "to_ids": True},
        {"type": "ip-dst", "value": "192.0.2.300", "to_ids": True},
        {"type": "sha256", "value": "abc", "to_ids": True}]}}))
    rows, notes = load(path)
    assert [r["value"] for r in rows] == ["192.0.2.1"]
    assert notes == [f"{path}: skipped 1 indicator(s): not a sha256 hash (first at {path}: Event.Attribute[2])",
                     f"{path}: skipped 1 indicator(s): not an IP address (first at {path}: Event.Attribute[1])"]


def test_misp_feed_with_a_missing_event_file(tmp_path: Path) -> None:
    shutil.copy(DATA / "misp_feed" / "manifest.json", tmp_path / "manifest.json")
    assert error_of(tmp_path / "manifest.json") == (
        f"{tmp_path / 'manifest.json'}: event 0c7f4e9a-2f0b-4d5e-8a43-6d1f2b3c4d5e: "
        "0c7f4e9a-2f0b-4d5e-8a43-6d1f2b3c4d5e.json is missing beside the manifest")


def test_misp_feed_hashes_csv_is_refused_with_a_pointer() -> None:
    path = DATA / "misp_feed" / "hashes.csv"
    assert error_of(path) == (f"{path}: a MISP feed's hashes.csv holds MD5 digests of values, not the values; "
                              "give the feed's manifest.json (or its event files) instead")


def test_stix_bad_objects(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps({"type": "bundle", "id": "bundle--1", "objects": {"type": "indicator"}}))
    assert error_of(path) == f"{path}: STIX bundle bundle--1: 'objects' must be a list"
    path.write_text(json.dumps({"type": "bundle", "id": "bundle--1", "objects": [{"type": "identity"}, "x"]}))
    assert error_of(path) == f"{path}: STIX bundle objects[1]: expected a JSON object"


def test_stix_invalid_indicators_are_counted_by_id(tmp_path: Path) -> None:
    good = json.loads((DATA / "stix_bundle.json").read_text())["objects"][1]
    no_pattern = {k: v for k, v in good.items() if k != "pattern"}
    no_pattern["id"] = "indicator--11111111-1111-4111-8111-111111111111"
    bad_pattern = dict(good, id="indicator--22222222-2222-4222-8222-222222222222", pattern="[ipv4-addr:value = ")
    bad_confidence = dict(good, id="indicator--33333333-3333-4333-8333-333333333333", confidence=150)
    # valid_from is required by STIX 2.1, but stix2 would fill it with the time of loading: the row says None
    no_valid_from = {k: v for k, v in good.items() if k not in ("valid_from", "valid_until")}
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps({"type": "bundle", "id": "bundle--1",
                                "objects": [no_pattern, bad_pattern, bad_confidence, no_valid_from]}))
    rows, notes = load(path)
    assert [(r["value"], r["valid_from"], r["valid_until"]) for r in rows] == [
        ("198.51.100.23", None, None), ("203.0.113.64/27", None, None)]
    assert notes == [
        f"{path}: skipped 1 indicator(s): confidence must be 0-100, got 150 "
        f"(first at {path}: indicator--33333333-3333-4333-8333-333333333333)",
        f"{path}: skipped 1 indicator(s): not a valid STIX 2.1 indicator (InvalidValueError) "
        f"(first at {path}: indicator--22222222-2222-4222-8222-222222222222)",
        f"{path}: skipped 1 indicator(s): not a valid STIX 2.1 indicator (MissingPropertiesError) "
        f"(first at {path}: indicator--11111111-1111-4111-8111-111111111111)"]


def test_compressed_downloads_are_named_not_guessed(tmp_path: Path) -> None:
    archive = tmp_path / "full.csv.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(DATA / "threatfox_recent.csv", "full.csv")
    assert error_of(archive) == f"{archive}: a zip archive; unzip it and give connhunt the file(s) inside: full.csv"
    packed = tmp_path / "ipblocklist.csv.gz"
    packed.write_bytes(gzip.compress((DATA / "feodo_ipblocklist.csv").read_bytes()))
    assert error_of(packed) == f"{packed}: a gzip file; gunzip it and give connhunt the file inside"


def test_misp_manifest_keys_must_be_event_uuids(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"../../etc/secrets": {"info": "x", "timestamp": 1}}))
    assert error_of(manifest) == f"{manifest}: manifest key '../../etc/secrets' is not an event uuid"
