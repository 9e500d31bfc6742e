"""bench/score's step runner: it reports a step's own peak RSS, and stops a step past its time limit while still
reporting how much memory the step had reached."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.score import measure


def test_peak_rss_is_the_steps_own(tmp_path: Path) -> None:
    ballast = bytearray(400 << 20)  # the caller is large; the step must not inherit its high-water mark
    m = measure.run([sys.executable, "-c", "x = bytearray(150 << 20)"], tmp_path / "out", timeout_s=30,
                    max_rss_mib=4000)
    assert (m.exit_code, m.stopped) == (0, None)
    assert 150 <= m.peak_rss_mib < 350, m
    del ballast


def test_a_step_past_its_time_is_stopped_and_measured(tmp_path: Path) -> None:
    m = measure.run([sys.executable, "-c", "import time; x = bytearray(200 << 20); time.sleep(60)"],
                    tmp_path / "out", timeout_s=2, max_rss_mib=4000)
    assert m.stopped == "timeout" and m.exit_code == -9 and m.wall_s < 10
    assert m.peak_rss_mib >= 200


def test_exit_code_passes_through(tmp_path: Path) -> None:
    m = measure.run([sys.executable, "-c", "import sys; print('x'); sys.exit(3)"], tmp_path / "out", timeout_s=30,
                    max_rss_mib=4000)
    assert (m.exit_code, m.stopped, m.stdout.read_text()) == (3, None, "x\n")
