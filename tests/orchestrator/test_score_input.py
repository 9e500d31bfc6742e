"""`connhunt score` on bad input: one line naming file and line, exit 2, never a traceback; --skip-bad keeps going."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import at, connection, run_connhunt


def _one_line_error(result, where: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("connhunt: error: ")
    assert where in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(("content", "line", "reason"), [
    (b'{"kind": "connection", "host": "h"\n', 2, "malformed JSON"),
    (b'{"kind": "connection", "protocol": "tcp", "remote_ip": "1.2.3.4", "remote_port": 1}\n', 2,
     "missing field(s): host"),
    (b'{"kind": "connection", "host": "h", "protocol": "tcp", "remote_ip": "1.2.3.4", "remote_port": "http"}\n', 2,
     "'remote_port' must be an integer"),
    (b'{"kind": "dns", "host": "h", "query": "x.example", "answers": 7}\n', 2, "'answers' must be a list"),
    (b'"just a string"\n', 2, "expected a JSON object"),
    (b'{"kind": "connection", "host": "h\xff\xfe"}\n', 2, "not UTF-8"),
])
def test_bad_line_names_file_and_line(tmp_path: Path, content: bytes, line: int, reason: str) -> None:
    path = tmp_path / "host.jsonl"
    path.write_bytes(json.dumps(connection()).encode() + b"\n" + content)
    result = run_connhunt("score", str(path))
    _one_line_error(result, f"{path}:{line}: ")
    assert reason in result.stderr


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    _one_line_error(run_connhunt("score", str(path)), f"{path}: empty file")


def test_directory(tmp_path: Path) -> None:
    _one_line_error(run_connhunt("score", str(tmp_path)), f"{tmp_path}: is a directory")


def test_missing_file(tmp_path: Path) -> None:
    _one_line_error(run_connhunt("score", str(tmp_path / "nope.jsonl")), "nope.jsonl: cannot open")


def test_skip_bad_scores_the_valid_lines_and_counts_the_rest(tmp_path: Path) -> None:
    good = [connection(pid=7, process_name="kworkerd", process_path="/tmp/kworkerd", remote_ip="203.0.113.9",
                       remote_port=4444, local_port=41000 + i, first_seen=at(5 * i), last_seen=at(5 * i + 1))
            for i in range(8)]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([json.dumps(good[0]), "{broken", *map(json.dumps, good[1:]), '{"kind": "nope"}']))
    result = run_connhunt("score", str(path), "--skip-bad", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert "skipped 2 bad line(s)" in result.stderr
    document = json.loads(result.stdout)
    assert any("skipped 2 bad line(s)" in note for note in document["hunt"]["notes"])
    assert document["hunt"]["rows"]["connections"] == 8
    finding = document["findings"][0]
    assert (finding["process_path"], finding["remote_ip"], finding["remote_port"]) == ("/tmp/kworkerd",
                                                                                      "203.0.113.9", 4444)


def test_bad_config_is_a_located_error(tmp_path: Path, jsonl) -> None:
    data = jsonl("h.jsonl", [connection()])
    config = tmp_path / "c.yaml"
    config.write_text("internal_networks: [10.0.0.0/8]\nresolverz: [1.1.1.1]\n")
    _one_line_error(run_connhunt("score", str(data), "--config", str(config)), "unknown config key(s): resolverz")
    config.write_text("internal_networks: [10.0.0.0/33]\n")
    _one_line_error(run_connhunt("score", str(data), "--config", str(config)), f"{config}:1: invalid config")
