"""What every connhunt command shares: the stderr console, common options, error handling and report output.

Helpers raise ConnhuntError; ``reports_errors`` turns one into a single line on stderr and the documented exit
code, so no command prints a traceback for bad input or a failed collection.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from orchestrator.errors import ConnhuntError, ExitCode
from orchestrator.model import HuntReport, risk_rank
from orchestrator.reports import Format, at_least, render

F = TypeVar("F", bound=Callable[..., Any])

err = Console(stderr=True)


class Risk(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def label(self) -> str:
        return self.value.capitalize()


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Report format.")]
MinRiskOpt = Annotated[Risk, typer.Option("--min-risk", help="Show findings at this risk level or above.")]
FailOnOpt = Annotated[Risk | None, typer.Option("--fail-on", help="Exit 1 when a finding reaches this level.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config: internal networks, "
                                                                             "resolvers, allowlists.")]
BaselineOpt = Annotated[Path | None, typer.Option("--baseline", help="Baseline file from `connhunt baseline`: "
                                                                      "known pairs are lowered, new ones raised.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or notes on stderr.")]


def reports_errors(func: F) -> F:
    """Turn ConnhuntError into one line on stderr and its exit code (keeps the signature typer reads)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConnhuntError as exc:
            err.print(f"connhunt: error: {exc}", highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(int(exc.exit_code)) from None

    return wrapper  # type: ignore[return-value]


def show_progress(quiet: bool) -> bool:
    return not quiet and err.is_terminal


def finish(report: HuntReport, fmt: Format, min_risk: Risk, fail_on: Risk | None) -> None:
    """Print the report and exit with the code the findings call for."""
    shown = at_least(report, min_risk.label)
    sys.stdout.write(render(shown, fmt))
    sys.stdout.flush()
    if fail_on and any(risk_rank(f.risk) >= risk_rank(fail_on.label) for f in report.findings):
        raise typer.Exit(ExitCode.FINDINGS)


