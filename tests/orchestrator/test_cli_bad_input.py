"""One error path and one meaning per flag, through the real entry point: every bad option is one line and exit 2
before any work; -o is the report; `score -` reads stdin; notes only when asked; --version; help shows no
<bool> placeholders."""

from __future__ import annotations

import json
import subprocess
from importlib import metadata
from pathlib import Path

import duckdb
import pytest
import typer
from typer.testing import CliRunner

from orchestrator import cli
from orchestrator.errors import ExitCode, exit_codes_help
from tests.conftest import ROOT, at, connection, run_connhunt, write_jsonl

ENTRY = ["-c", "from orchestrator.cli import main; main()"]


def _implant(i: int) -> dict[str, object]:
    return connection(pid=7, process_name="kworkerd", process_path="/tmp/kworkerd", remote_ip="203.0.113.9",
                      remote_port=4444, local_port=41000 + i, first_seen=at(5 * i), last_seen=at(5 * i + 1))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "h1.jsonl", [_implant(i) for i in range(8)])


def _without_time(document: dict[str, object]) -> dict[str, object]:
    hunt = dict(document["hunt"])  # type: ignore[arg-type]
    hunt.pop("generated_at")
    return {**document, "hunt": hunt}


def test_version() -> None:
    result = run_connhunt("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"connhunt {metadata.version('connhunt')}\n", "")


def test_help_lists_the_exit_codes() -> None:
    result = run_connhunt("--help")
    assert result.returncode == 0
    assert " ".join(exit_codes_help().split()) in " ".join(result.stdout.split())
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 130, 141]


def _commands(command: typer.core.TyperGroup | typer.core.TyperCommand, path: tuple[str, ...] = ()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_no_help_shows_a_bool_placeholder() -> None:
    cli._register_command_groups()
    root = typer.main.get_command(cli.app)
    checked = 0
    for path, command in _commands(root):
        result = CliRunner().invoke(cli.app, [*path, "--help"], prog_name="connhunt")
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, (path, result.output)
        for param in command.params:
            if getattr(param, "is_flag", False) and not getattr(param, "hidden", False):
                assert param.opts[0] in result.output, (path, param.opts)
                checked += 1
    assert checked >= 20  # every command's flags were looked at, not just the root's


def test_the_report_goes_to_output(tmp_path: Path, data: Path) -> None:
    printed = run_connhunt("score", str(data), "--format", "json")
    report = tmp_path / "report.json"
    written = run_connhunt("score", str(data), "--format", "json", "-o", str(report))
    assert (written.returncode, written.stdout, written.stderr) == (0, "", "")
    assert _without_time(json.loads(report.read_text())) == _without_time(json.loads(printed.stdout))
    assert json.loads(printed.stdout)["findings"][0]["remote_port"] == 4444


@pytest.mark.parametrize("target", ["directory", "missing folder", "unwritable"])
def test_an_unusable_report_path_is_one_line_before_reading(tmp_path: Path, data: Path, target: str) -> None:
    path, reason = {"directory": (tmp_path, "is a directory"),
                    "missing folder": (tmp_path / "no" / "r.html", f"no such folder {tmp_path / 'no'}"),
                    "unwritable": (Path("/sys/kernel/connhunt-test.html"), "Permission denied")}[target]
    result = run_connhunt("score", str(data), "-o", str(path))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"connhunt: error: {path}: cannot write the report: {reason}\n"


def test_score_reads_stdin(data: Path) -> None:
    from_file = run_connhunt("score", str(data), "--format", "json")
    piped = subprocess.run([cli.sys.executable, *ENTRY, "score", "-", "--format", "json"], cwd=ROOT,
                           input=data.read_text(), capture_output=True, text=True, timeout=120)
    assert (piped.returncode, piped.stderr) == (0, "")
    document, expected = _without_time(json.loads(piped.stdout)), _without_time(json.loads(from_file.stdout))
    assert document["findings"] == expected["findings"]
    assert document["hunt"]["sources"] == ["jsonl:<stdin>"]  # type: ignore[index]


def test_a_bad_line_on_stdin_is_named(data: Path) -> None:
    piped = subprocess.run([cli.sys.executable, *ENTRY, "score", "-"], cwd=ROOT, capture_output=True, text=True,
                           input=data.read_text() + "{broken\n", timeout=120)
    assert (piped.returncode, piped.stdout) == (2, "")
    assert piped.stderr == ("connhunt: error: <stdin>:9: malformed JSON: Expecting property name enclosed in double "
                            "quotes (column 2)\n")


@pytest.mark.parametrize("command", ["score", "baseline"])
def test_skip_bad_with_no_valid_row_is_exit_2(tmp_path: Path, command: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{broken\n{"kind": "nope"}\n')
    extra = ["--db", str(tmp_path / "b.duckdb")] if command == "baseline" else []
    result = run_connhunt(command, str(bad), "--skip-bad", *extra)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"connhunt: error: no valid rows: all 2 line(s) read were bad; first: {bad}:1: "
                             "malformed JSON: Expecting property name enclosed in double quotes (column 2)\n")
    assert not (tmp_path / "b.duckdb").exists()


def _parquet(path: Path) -> None:
    con = duckdb.connect()
    con.execute(f"COPY (SELECT 'h1' AS host, 443 AS remote_port) TO '{path}' (FORMAT parquet)")
    con.close()


@pytest.mark.parametrize("name", ["data.jsonl", "data.json", "data.csv", "data.parquet"])
def test_baseline_never_writes_over_a_file_that_is_not_duckdb(tmp_path: Path, data: Path, name: str) -> None:
    target = tmp_path / name
    if name.endswith(".parquet"):
        _parquet(target)
    else:
        target.write_text({"data.jsonl": data.read_text(), "data.json": '[{"host": "h1"}]\n',
                           "data.csv": "host,remote_port\nh1,443\n"}[name])
    before = target.read_bytes()
    result = run_connhunt("baseline", str(data), "--db", str(target))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"connhunt: error: {target}: exists and is not a DuckDB file; refusing to write the "
                             "baseline over it\n")
    assert target.read_bytes() == before


def test_baseline_extends_its_own_database(tmp_path: Path, data: Path) -> None:
    base = tmp_path / "base.duckdb"
    other = write_jsonl(tmp_path / "h2.jsonl", [connection(host="h2", remote_ip="198.51.100.7")])
    first = run_connhunt("baseline", str(data), "--db", str(base), "--verbose")
    second = run_connhunt("baseline", str(other), "--db", str(base), "--verbose")
    assert (first.returncode, first.stderr) == (0, f"{base}: 1 pairs (8 connection rows read)\n")
    assert (second.returncode, second.stderr) == (0, f"{base}: 2 pairs (1 connection rows read)\n")


def test_notes_appear_only_when_asked_and_are_never_wrapped(tmp_path: Path, data: Path) -> None:
    report = tmp_path / ("a-rather-long-report-name-" * 4 + ".json")
    narrow = {"COLUMNS": "80"}
    silent = run_connhunt("score", str(data), "-f", "json", "-o", str(report), env=narrow)
    assert (silent.returncode, silent.stderr) == (0, "")  # stderr is not a terminal: no notes
    note = f"report written to {report}\n"
    assert len(note) > 80
    for args in (["score", str(data), "-o", str(report), "--verbose"], ["-v", "score", str(data), "-o", str(report)]):
        asked = run_connhunt(*args, env=narrow)
        assert (asked.returncode, asked.stderr) == (0, note)
    quiet = run_connhunt("score", str(data), "-o", str(report), "--quiet", "--verbose", env=narrow)
    assert (quiet.returncode, quiet.stderr) == (0, "")


def test_skipped_input_is_a_warning_that_always_appears(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / ("a-rather-long-file-name-" * 4 + ".jsonl"), [_implant(0)])
    path.write_text(path.read_text() + "{broken\n")
    result = run_connhunt("score", str(path), "--skip-bad", "-f", "json", env={"COLUMNS": "80"})
    text = f"skipped 1 bad line(s); first: {path}:2: malformed JSON: Expecting property name enclosed in double " \
           "quotes (column 2)"
    assert (result.returncode, result.stderr) == (0, f"connhunt: warning: {text}\n")  # one line, never wrapped
    assert json.loads(result.stdout)["hunt"]["notes"] == [text]


def test_errors_appear_even_with_quiet(tmp_path: Path) -> None:
    result = run_connhunt("score", str(tmp_path / "none.jsonl"), "--quiet")
    assert result.returncode == 2
    assert result.stderr.startswith(f"connhunt: error: {tmp_path / 'none.jsonl'}: ") and result.stderr.count("\n") == 1


def test_a_closed_stdout_ends_the_report_quietly(data: Path) -> None:
    proc = subprocess.Popen([cli.sys.executable, *ENTRY, "score", str(data), "-f", "jsonl"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=60)
    assert (proc.returncode, stderr) == (141, "")


@pytest.mark.parametrize(("args", "message"), [
    (["triage", "--duration", "0"], "--duration must be a number of seconds greater than 0, not 0.0"),
    (["triage", "--interval", "-1"], "--interval must be a number of seconds greater than 0, not -1.0"),
    (["collect", "--duration", "5"], "collect: --output is required (a file, or - for stdout)"),
    (["collect", "-o", "x.jsonl", "--max-hash-bytes", "-2"],
     "--max-hash-bytes must be -1 (no cap), 0 (hash nothing) or a size, not -2"),
])
def test_bad_options_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = run_connhunt(*args)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"connhunt: error: {message}\n")


def test_hunt_checks_its_report_path_before_reaching_the_server(tmp_path: Path) -> None:
    """-o is the report for hunt too, and an unusable one is refused before any hunt is launched."""
    result = run_connhunt("hunt", "-o", str(tmp_path / "no" / "report.json"), "--api-config",
                          str(tmp_path / "api.config.yaml"))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"connhunt: error: {tmp_path / 'no' / 'report.json'}: cannot write the report: "
                             f"no such folder {tmp_path / 'no'}\n")
