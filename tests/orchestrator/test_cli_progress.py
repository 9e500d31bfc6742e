"""Long scoring shows progress: analyse() takes a (stage, done, total) callback and the CLI draws each stage."""

from __future__ import annotations

import io

from rich.console import Console

from orchestrator.cli_common import scoring_progress
from orchestrator.config import Config
from orchestrator.pipeline import analyse
from orchestrator.store import Store


def test_each_stage_the_pipeline_reports_is_drawn() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with scoring_progress(False, 200_000, console=console) as progress:
        progress("detectors", 2, 9)
        progress("scoring", 150, 300)
    drawn = screen.getvalue()
    assert "scoring 200,000 rows" in drawn
    assert "detectors" in drawn and "2/9" in drawn
    assert "150/300" in drawn


def test_analyse_accepts_a_progress_callback() -> None:
    calls: list[tuple[str, int, int]] = []
    with Store() as store:
        report = analyse(store, Config(), progress=lambda stage, done, total: calls.append((stage, done, total)))
    assert report.findings == () and all(0 <= done <= total for _, done, total in calls)
