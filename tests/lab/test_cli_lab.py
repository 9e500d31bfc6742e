"""`connhunt lab` is wired into the main command line and parses its options (no lab is started here)."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from orchestrator import cli_lab


def app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """connhunt"""

    cli_lab.register(root)
    return root


def test_lab_help_lists_run_and_clean() -> None:
    result = CliRunner().invoke(app(), ["lab", "--help"])
    assert result.exit_code == 0
    assert "run" in result.output and "clean" in result.output


def test_lab_run_rejects_a_fleet_too_small(tmp_path: object) -> None:
    result = CliRunner().invoke(app(), ["lab", "run", "--hosts", "3", "--minutes", "1", "--no-score"])
    assert result.exit_code in (2, 3)  # 3: LabError (bad fleet size or not root); never a traceback
    assert result.exception is None or isinstance(result.exception, SystemExit)
