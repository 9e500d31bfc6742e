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

from orchestrator.cli_common import err, error_line
from orchestrator.errors import ExitCode
from orchestrator.lab import groundtruth
from orchestrator.lab.clean import clean
from orchestrator.lab.evaluate import evaluate, table
from orchestrator.lab.netns import LabError
from orchestrator.lab.runner import LabConfig, run_lab
from orchestrator.lab.score import score_files, write_hunt_config

EXIT_TARGETS_MISSED = ExitCode.FINDINGS  # the lab's "findings": a detection target was missed
EXIT_LAB_FAILED = ExitCode.COLLECTION_FAILED

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
    out: Annotated[Path | None, typer.Option("--dir", help="Folder for the lab's outputs (logs, collected JSONL, "
                                                           "hunt_report.json, evaluation.json); kept.")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Without --dir: keep the temporary output folder instead of "
                                                      "removing it at the end.")] = False,
    score: Annotated[bool, typer.Option("--score/--no-score", help="Score the fleet and judge it against the "
                                                                   "ground truth.")] = True,
    interval: Annotated[float, typer.Option("--interval", help="Collector sampling interval, seconds.")] = 1.0,
    fmt: Annotated[LabFormat, typer.Option("--format", "-f", help="Output format.")] = LabFormat.text,
) -> None:
    """Build the lab, play the scenarios for MINUTES, collect every host, tear everything down, and score.

    Needs root (network namespaces). Exit codes: 0 every detection target met; 1 a target missed; 3 the lab failed.

    \b
    Example: connhunt lab run --minutes 3 --hosts 8 --dir lab-run --format json
    """
    out_dir, kept = output_folder(out, keep)
    try:
        result = run_lab(LabConfig(minutes=minutes, hosts=hosts, out=out_dir, interval=interval),
                         echo=lambda line: err.print(line, highlight=False, markup=False))
        evaluation = None
        if score:
            report = score_files(result.agent_files, write_hunt_config(out_dir))
            (out_dir / "hunt_report.json").write_text(json.dumps(report, indent=2) + "\n")
            evaluation = evaluate(report, groundtruth.read(result.ground_truth))
            (out_dir / "evaluation.json").write_text(json.dumps(evaluation.as_dict(), indent=2) + "\n")
        if fmt is LabFormat.json:
            sys.stdout.write(json.dumps(summary(result.summary(), evaluation, kept), indent=2) + "\n")
        else:
            sys.stdout.write(done_line(result.prefix, result.seconds, out_dir, kept) + "\n")
            sys.stdout.write(table(evaluation) if evaluation else f"records: {result.records}\n")
    except LabError as exc:
        error_line(f"lab: {exc}")
        raise typer.Exit(int(EXIT_LAB_FAILED)) from None
    finally:
        if not kept:
            shutil.rmtree(out_dir, ignore_errors=True)
    if evaluation is not None and not evaluation.targets_met:
        raise typer.Exit(int(EXIT_TARGETS_MISSED))


def output_folder(given: Path | None, keep: bool) -> tuple[Path, bool]:
    """The folder the lab writes to, and whether it outlives the run (--dir always does; a temporary one only
    with --keep)."""
    if given is not None:
        return given, True
    return Path(tempfile.mkdtemp(prefix="connhunt-lab-")), keep


def done_line(prefix: str, seconds: float, out_dir: Path, kept: bool) -> str:
    """The text summary's first line: it names the output folder only when that folder is kept."""
    where = f"outputs in {out_dir}" if kept else "outputs removed (keep them with --dir DIR or --keep)"
    return f"lab {prefix} done in {seconds:.0f} s; {where}"


_PATH_FIELDS = ("out", "agent_files", "ground_truth", "log")


def summary(lab: dict[str, object], evaluation: object | None, kept: bool) -> dict[str, object]:
    """The JSON summary; paths into a folder that is removed at the end are left out (null), not left dangling."""
    lab = dict(lab) if kept else {k: (None if k in _PATH_FIELDS else v) for k, v in lab.items()}
    document: dict[str, object] = {"lab": lab}
    if evaluation is not None:
        document["evaluation"] = evaluation.as_dict()  # type: ignore[attr-defined]
    return document


@lab_app.command("clean")
def clean_cmd() -> None:
    """Remove what a crashed lab run left behind: chlab-* namespaces, their processes, the lab's binaries.

    Example: connhunt lab clean
    """
    try:
        removed = clean()
    except LabError as exc:  # e.g. not root: `ip netns` refused
        error_line(f"lab clean: {exc}")
        raise typer.Exit(int(EXIT_LAB_FAILED)) from None
    sys.stdout.write(f"removed {len(removed)} namespace(s){': ' + ', '.join(removed) if removed else ''}\n")


def register(app: typer.Typer) -> None:
    app.add_typer(lab_app, name="lab")
