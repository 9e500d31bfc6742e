"""`connhunt baseline` records known pairs; `--baseline` lowers them and raises destinations never seen before."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import connection, run_connhunt


def test_baseline_lowers_known_pairs_and_raises_new_destinations(tmp_path: Path, jsonl) -> None:
    old = dict(process_name="agent", process_path="/usr/bin/agent", remote_ip="203.0.113.10", remote_port=8081)
    last_week = jsonl("last_week.jsonl", [connection(**old)])
    base = tmp_path / "fleet.duckdb"
    built = run_connhunt("baseline", str(last_week), "--db", str(base), "--verbose")
    assert built.returncode == 0, built.stderr
    assert f"{base}: 1 pairs" in built.stderr

    today = jsonl("today.jsonl", [connection(**old, local_port=40001),
                                  connection(**dict(old, remote_ip="203.0.113.99"), local_port=40002)])
    without = json.loads(run_connhunt("score", str(today), "-f", "json", "--min-risk", "low").stdout)
    scored = run_connhunt("score", str(today), "-f", "json", "--min-risk", "low", "--baseline", str(base))
    assert scored.returncode == 0, scored.stderr
    findings = {f["remote_ip"]: f for f in json.loads(scored.stdout)["findings"]}
    before = {f["remote_ip"]: f["score"] for f in without["findings"]}
    known, new = findings["203.0.113.10"], findings["203.0.113.99"]
    assert known["score"] == round(before["203.0.113.10"] * 0.7, 2)
    assert any("this pair was seen on 1 host(s) since 2026-11-23" in line for line in known["evidence"])
    assert new["score"] == before["203.0.113.99"] + 1.0
    assert any("no host ever reached 203.0.113.99:8081 before" in line for line in new["evidence"])


def test_a_file_that_is_not_a_baseline_is_a_clear_error(tmp_path: Path, jsonl) -> None:
    data = jsonl("d.jsonl", [connection()])
    bogus = tmp_path / "bogus.duckdb"
    bogus.write_text("not a database\n")
    result = run_connhunt("score", str(data), "--baseline", str(bogus))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith(f"connhunt: error: {bogus}: not a connhunt baseline")
    missing = run_connhunt("score", str(data), "--baseline", str(tmp_path / "none.duckdb"))
    assert missing.returncode == 2 and "no such baseline file" in missing.stderr
