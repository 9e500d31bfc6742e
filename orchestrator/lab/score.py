"""Score a lab run's collected files as one fleet with connhunt's own command line, exactly as an analyst would.

The lab hands the hunt what a real analyst knows about this fleet: its configured resolver (every host's
resolv.conf names it) and its internal range; nothing about the attacks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestrator.lab import plan
from orchestrator.lab.netns import LabError

SCORE_TIMEOUT = 300


def write_hunt_config(out: Path) -> Path:
    path = out / "hunt_config.yaml"
    path.write_text(f'resolvers: ["{plan.RESOLVER}"]\n')
    return path


def score_files(files: list[Path], config: Path | None = None) -> dict[str, Any]:
    """The JSON hunt report (every finding, down to Low) for ``files`` scored together as one fleet."""
    if not files:
        raise LabError("no collector output to score")
    argv = [sys.executable, "-c", "from orchestrator.cli import main; main()", "score", *map(str, files),
            "--format", "json", "--min-risk", "low", "--quiet"]
    if config:
        argv += ["--config", str(config)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=SCORE_TIMEOUT,
                          cwd=Path(__file__).resolve().parents[2])
    if proc.returncode not in (0, 1):
        raise LabError(f"connhunt score failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except ValueError as exc:
        raise LabError(f"connhunt score printed no JSON: {proc.stdout[:500]!r}") from exc
    return report
