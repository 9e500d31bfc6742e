"""`connhunt lab run` names its output folder only when that folder outlives the run (no lab is started here: a
fleet size the lab refuses fails before any namespace exists)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from orchestrator.cli_lab import done_line, output_folder, summary
from tests.conftest import run_connhunt


def _lab_temp_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("connhunt-lab-*"))


def test_a_temporary_folder_is_removed_and_never_named() -> None:
    before = _lab_temp_dirs()
    result = run_connhunt("lab", "run", "--hosts", "3", "--no-score")
    assert (result.returncode, result.stdout) == (3, "")
    assert result.stderr == "connhunt: error: lab: --hosts must be between 6 and 10\n"
    assert _lab_temp_dirs() <= before  # nothing left behind in the temporary directory


def test_a_given_folder_is_never_removed(tmp_path: Path) -> None:
    out = tmp_path / "lab-run"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    result = run_connhunt("lab", "run", "--hosts", "3", "--dir", str(out))
    assert result.returncode == 3
    assert (out / "notes.txt").read_text() == "mine\n"


def test_the_summary_names_the_folder_only_when_it_is_kept(tmp_path: Path) -> None:
    temporary, kept = output_folder(None, keep=False)
    try:
        assert (temporary.is_dir(), kept) == (True, False)
        assert done_line("chlab-1", 181.4, temporary, kept) == (
            "lab chlab-1 done in 181 s; outputs removed (keep them with --dir DIR or --keep)")
    finally:
        temporary.rmdir()
    assert output_folder(tmp_path, keep=False) == (tmp_path, True)
    assert done_line("chlab-1", 181.4, tmp_path, True) == f"lab chlab-1 done in 181 s; outputs in {tmp_path}"
    lab = {"prefix": "chlab-1", "out": str(tmp_path), "hosts": ["ws01"], "agent_files": [str(tmp_path / "a")],
           "ground_truth": str(tmp_path / "g"), "log": str(tmp_path / "lab.log"), "records": {}, "seconds": 181.4}
    assert summary(lab, None, kept=True) == {"lab": lab}
    assert summary(lab, None, kept=False) == {"lab": {**lab, "out": None, "agent_files": None, "ground_truth": None,
                                                      "log": None}}
