"""`connhunt lab`: run the purple-team lab (and score it against its ground truth), or clean up after a crash.

Thin front-end: parses options and calls orchestrator.lab; the lab's core never imports typer.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli_common import err
from orchestrator.lab import groundtruth
from orchestrator.lab.clean import clean
from orchestrator.lab.evaluate import evaluate, table
from orchestrator.lab.netns import LabError
from orchestrator.lab.runner import LabConfig, run_lab
from orchestrator.lab.score import score_files, write_hunt_config

EXIT_TARGETS_MISSED = 1
EXIT_LAB_FAILED = 3

lab_app = typer.Typer(
    name="lab",
    help="The purple-team lab: a fleet of network namespaces playing benign and malicious traffic for real; "
         "all traffic stays inside the lab's namespaces.\n\nExit codes: 0 ok (targets met, or --no-score); "
         "1 detection targets missed; 2 bad usage; 3 the lab itself failed.",
    no_args_is_help=True,
)


class LabFormat(str, Enum):
    text = "text"
    json = "json"


@lab_app.command("run")
def run(
    minutes: Annotated[float, typer.Option("--minutes", "-m", help="Minutes of traffic.")] = 3.0,
    hosts: Annotated[int, typer.Option("--hosts", help="Fleet size (6-10).")] = 8,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output directory (default: a temporary one, "
                                                                  "removed unless --keep).")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the output directory when none was given.")] = False,
    score: Annotated[bool, typer.Option("--score/--no-score", help="Score the fleet and judge it against the "
                                                                   "ground truth.")] = True,
    interval: Annotated[float, typer.Option("--interval", help="Collector sampling interval, seconds.")] = 1.0,
    fmt: Annotated[LabFormat, typer.Option("--format", "-f", help="Output format.")] = LabFormat.text,
) -> None:
    """Build the lab, play the scenarios for MINUTES, collect every host, tear everything down, and score.

    Needs root (network namespaces). Exit codes: 0 every detection target met; 1 a target missed; 3 the lab failed.

    Example: connhunt lab run --minutes 3 --hosts 8 --out lab-run --format json
    """
    out_dir = out or Path(tempfile.mkdtemp(prefix="connhunt-lab-"))
    try:
        result = run_lab(LabConfig(minutes=minutes, hosts=hosts, out=out_dir, interval=interval),
                         echo=lambda line: err.print(line, highlight=False, markup=False))
        summary: dict[str, object] = {"lab": result.summary()}
        evaluation = None
        if score:
            report = score_files(result.agent_files, write_hunt_config(out_dir))
            (out_dir / "hunt_report.json").write_text(json.dumps(report, indent=2) + "\n")
            evaluation = evaluate(report, groundtruth.read(result.ground_truth))
            (out_dir / "evaluation.json").write_text(json.dumps(evaluation.as_dict(), indent=2) + "\n")
            summary["evaluation"] = evaluation.as_dict()
        if fmt is LabFormat.json:
            sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        else:
            sys.stdout.write(f"lab {result.prefix} done in {result.seconds:.0f} s; outputs in {out_dir}\n")
            sys.stdout.write(table(evaluation) if evaluation else f"records: {result.records}\n")
    except LabError as exc:
        err.print(f"connhunt lab: error: {exc}", highlight=False, markup=False)
        raise typer.Exit(EXIT_LAB_FAILED) from None
    finally:
        if out is None and not keep:
            shutil.rmtree(out_dir, ignore_errors=True)
    if evaluation is not None and not evaluation.targets_met:
        raise typer.Exit(EXIT_TARGETS_MISSED)


@lab_app.command("clean")
def clean_cmd() -> None:
    """Remove what a crashed lab run left behind: chlab-* namespaces, their processes, the lab's binaries.

    Example: connhunt lab clean
    """
    removed = clean()
    err.print(f"removed {len(removed)} namespace(s){': ' + ', '.join(removed) if removed else ''}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(lab_app, name="lab")
