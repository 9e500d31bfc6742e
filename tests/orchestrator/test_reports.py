"""Every report format renders the same findings; text keeps the hunt format; Sigma follows --min-risk."""

from __future__ import annotations

import csv
import io
import json

import yaml

from orchestrator.config import Config
from orchestrator.pipeline import analyse, ingest_files
from orchestrator.reports import Format, at_least, render
from orchestrator.rules.generator import rules_for_all
from orchestrator.store import Store
from tests.conftest import at, connection


def _report(jsonl):
    records = [connection(pid=7, process_name="kworkerd", process_path="/tmp/kworkerd", remote_ip="203.0.113.9",
                          remote_port=4444, local_port=41000 + i, first_seen=at(5 * i), last_seen=at(5 * i + 1),
                          command_line="/tmp/kworkerd\n--fake-line")
               for i in range(8)]
    records.append(connection(pid=8, process_name="ssh", process_path="/usr/bin/ssh", remote_port=2222))
    store = Store()
    ingest_files([jsonl("h.jsonl", records)], store)
    return analyse(store, Config())


def test_formats_agree(jsonl) -> None:
    report = at_least(_report(jsonl), "Low")
    ids = [f.hunt_id for f in report.findings]
    assert len(ids) == 2
    assert [f["hunt_id"] for f in json.loads(render(report, Format.json))["findings"]] == ids
    assert [json.loads(line)["hunt_id"] for line in render(report, Format.jsonl).splitlines()] == ids
    assert [row["hunt_id"] for row in csv.DictReader(io.StringIO(render(report, Format.csv)))] == ids
    markdown = render(report, Format.markdown)
    assert all(f"## {i}" in markdown for i in ids)
    rules = list(yaml.safe_load_all(render(report, Format.sigma)))
    # Sigma follows --min-risk like every format: the shown findings' rules (tests/rules covers them in full).
    assert [r["id"] for r in rules] == [r["id"] for r in rules_for_all(report.findings)]
    assert rules[0]["detection"]["selection"] == {"Image": "/tmp/kworkerd", "DestinationIp": "203.0.113.9",
                                                  "DestinationPort": 4444, "Initiated": "true"}


def test_html_is_self_contained_and_escaped(jsonl) -> None:
    records = [connection(pid=7, process_name="x", process_path="/tmp/<script>alert(1)</script>", remote_port=4444,
                          command_line="x <b>bold</b>", local_port=41000 + i) for i in range(2)]
    store = Store()
    ingest_files([jsonl("h.jsonl", records)], store)
    page = render(analyse(store, Config()), Format.html)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page
    assert page.count("<svg") == 2 and "Findings by risk" in page
    assert "http" not in page.replace("http-equiv", "")  # no external assets


def test_text_escapes_control_characters(jsonl) -> None:
    text = render(_report(jsonl), Format.text)
    assert "command line: /tmp/kworkerd\\n--fake-line" in text
    assert "\n--fake-line" not in text
