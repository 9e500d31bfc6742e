"""What every connhunt command shares: the stderr consoles, common options, the one error path, report output.

Helpers raise ConnhuntError; ``reports_errors`` turns one into a single line on stderr and the documented exit
code (orchestrator.errors.ExitCode), and does the same for Ctrl-C (130) and a stdout closed by its reader (141),
so no command prints a traceback for bad input, an interruption or a failed collection.

Notes (what is being done, what was written where) go to ``err`` and appear only when stderr is a terminal,
unless --verbose asks for them; errors and warnings (input that was skipped) go to their own console and always
appear. Neither is ever hard-wrapped, so a line of stderr stays one line for grep.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any, TypeVar

import duckdb
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orchestrator.errors import ConnhuntError, ExitCode, InputError
from orchestrator.model import HuntReport, Risk, risk_rank
from orchestrator.reports import Format, at_least, render

F = TypeVar("F", bound=Callable[..., Any])
ProgressCallback = Callable[[str, int, int], None]

# Notes and progress bars; muted by set_notes() when nobody is watching stderr.
err = Console(stderr=True, soft_wrap=True, highlight=False)
# Errors: always shown, never wrapped, never styled.
_errors = Console(stderr=True, soft_wrap=True, highlight=False, markup=False, emoji=False)


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Report format.")]
# One spelling of a risk everywhere (model.Risk); the CLI takes it in any case (--min-risk high).
MinRiskOpt = Annotated[Risk, typer.Option("--min-risk", case_sensitive=False,
                                          help="Show findings at this risk level or above (in every format).")]
FailOnOpt = Annotated[Risk | None, typer.Option("--fail-on", case_sensitive=False,
                                                help="Exit 1 when a finding reaches this level.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config: internal networks, "
                                                                             "resolvers, allowlists.")]
IntelOpt = Annotated[list[Path] | None, typer.Option("--intel", help="Threat-intel file (STIX 2.1 bundle, MISP event "
                                                  "or feed, abuse.ch Feodo/ThreatFox export, or one IOC per line); "
                                                  "repeat for several.")]
BaselineOpt = Annotated[Path | None, typer.Option("--baseline", help="Baseline file from `connhunt baseline`: "
                                                                      "known pairs are lowered, new ones raised.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to this file instead of "
                                                                        "stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or notes on stderr.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Notes on stderr even when it is not a "
                                                                  "terminal.")]


@dataclass
class _Signals:
    """Ctrl-C / SIGTERM state of this process: how many arrived, and whether the command stops gracefully."""

    received: int = 0
    graceful: bool = False  # inside interruptible(): the first signal only sets ``stop``
    stop: threading.Event = field(default_factory=threading.Event)
    verbose: bool = False  # --verbose given before the command name


_signals = _Signals()


def _on_signal(signum: int, _frame: object) -> None:
    _signals.received += 1
    if _signals.graceful and _signals.received == 1:
        # Only a flag: the collection loop checks it, and DuckDB work under way is never interrupted.
        _signals.stop.set()
        return
    raise KeyboardInterrupt


def set_verbose(verbose: bool) -> None:
    """``connhunt --verbose COMMAND``: notes for every command, also those without their own --verbose."""
    _signals.verbose = verbose
    set_notes()


def set_notes(*, quiet: bool = False, verbose: bool = False) -> None:
    """Show notes when asked to (--verbose) or when someone watches stderr; never with --quiet."""
    err.quiet = quiet or not (verbose or _signals.verbose or err.is_terminal)


def note(message: str) -> None:
    """One line of information on stderr (shown as set_notes decided)."""
    err.print(message, markup=False)


def error_line(message: str) -> None:
    _errors.print(f"connhunt: error: {message}")


def warning(message: str) -> None:
    """Input was dropped or something else the user must know even in a script: shown like an error, always."""
    _errors.print(f"connhunt: warning: {message}")


def reports_errors(func: F) -> F:
    """The one error path: ConnhuntError, Ctrl-C and a closed stdout become one line (or none) and an exit code.

    Keeps the signature typer reads. SIGINT and SIGTERM are handled for the whole command, so an interruption is
    always a KeyboardInterrupt this wrapper sees, even when DuckDB turned it into its own "Query interrupted".
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        restore = _install_signal_handlers()
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise  # an exit code already decided (click's Exit is a RuntimeError, so it must pass first)
        except ConnhuntError as exc:
            error_line(str(exc))
            raise typer.Exit(int(exc.exit_code)) from None
        except BrokenPipeError:
            _stdout_to_devnull()
            raise typer.Exit(int(ExitCode.OUTPUT_CLOSED)) from None
        except (KeyboardInterrupt, duckdb.InterruptException, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and not _signals.received:
                raise
            _errors.print("connhunt: interrupted")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        finally:
            restore()

    return wrapper  # type: ignore[return-value]


def _install_signal_handlers() -> Callable[[], None]:
    _signals.received = 0
    _signals.stop.clear()
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def _stdout_to_devnull() -> None:
    """The reader left: point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


@contextmanager
def interruptible() -> Iterator[threading.Event]:
    """Inside: the first Ctrl-C or SIGTERM sets the yielded event (the collection loop stops and what it gathered
    is still saved and scored); a second one aborts. ``interrupted()`` tells afterwards whether it happened."""
    _signals.graceful = True
    try:
        yield _signals.stop
    finally:
        _signals.graceful = False


def interrupted() -> bool:
    return _signals.stop.is_set()


def show_progress(quiet: bool) -> bool:
    return not quiet and not err.quiet and err.is_terminal


def check_writable(path: Path | None, what: str) -> None:
    """Fail now, before any work, if ``path`` cannot be written later (a directory, no such folder, no permission).

    Probes by opening for append, which never changes an existing file; a file the probe created is removed.
    """
    if path is None or str(path) == "-":
        return
    existed = path.exists()
    with open_for_writing(path, what, mode="a"):
        pass
    if not existed:
        path.unlink(missing_ok=True)


DUCKDB_MAGIC = (8, b"DUCK")  # offset and bytes of the DuckDB file header's magic


def check_database_target(path: Path, what: str) -> None:
    """``path`` can become (or already is) a DuckDB file: never write a database over a JSONL, CSV or Parquet
    file someone gave by mistake."""
    if path.is_file() and path.stat().st_size > 0:
        offset, magic = DUCKDB_MAGIC
        try:
            with path.open("rb") as handle:
                handle.seek(offset)
                header = handle.read(len(magic))
        except OSError as exc:
            raise InputError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
        if header != magic:
            raise InputError(f"{path}: exists and is not a DuckDB file; refusing to write the {what} over it")
        check_writable(path, what)
        return
    if path.is_file():  # empty: DuckDB refuses a zero-byte file, and there is nothing in it to keep
        check_writable(path, what)
        path.unlink()
        return
    check_writable(path, what)


def open_for_writing(path: Path, what: str, mode: str = "w") -> IO[str]:
    """``path`` opened for writing text, or an InputError saying in one line why it cannot be."""
    if path.is_dir():
        raise InputError(f"{path}: cannot write the {what}: is a directory")
    if not path.parent.is_dir():
        raise InputError(f"{path}: cannot write the {what}: no such folder {path.parent}")
    try:
        return path.open(mode, encoding="utf-8", newline="\n")
    except OSError as exc:
        raise InputError(f"{path}: cannot write the {what}: {exc.strerror or exc}") from None


def write_report(report: HuntReport, fmt: Format, min_risk: Risk, fail_on: Risk | None,
                 output: Path | None = None) -> ExitCode:
    """Write the report (findings at --min-risk or above, whatever the format) to ``output`` or stdout; return
    the exit code the findings call for."""
    text = render(at_least(report, min_risk.value), fmt)
    if output is None or str(output) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        with open_for_writing(output, "report") as handle:
            handle.write(text)
        note(f"report written to {output}")
    if fail_on and any(risk_rank(f.risk) >= risk_rank(fail_on.value) for f in report.findings):
        return ExitCode.FINDINGS
    return ExitCode.OK


def built_risk(min_risk: Risk, fail_on: Risk | None) -> str:
    """The lowest risk whose findings must be built: what is shown, and what --fail-on looks for."""
    wanted = [min_risk] + ([fail_on] if fail_on else [])
    return min((r.value for r in wanted), key=risk_rank)


def finish(report: HuntReport, fmt: Format, min_risk: Risk, fail_on: Risk | None,
           output: Path | None = None) -> None:
    """Print the report and exit with the code the findings call for."""
    code = write_report(report, fmt, min_risk, fail_on, output)
    if code:
        raise typer.Exit(int(code))


@contextmanager
def scoring_progress(quiet: bool, rows: int, console: Console | None = None) -> Iterator[ProgressCallback]:
    """A live display while a store is scored: a pulsing bar at once, then one bar per stage as the pipeline
    reports ``(stage, done, total)`` through the yielded callback (``analyse(progress=...)``)."""
    console = console or err
    enabled = console is not err or show_progress(quiet)
    with Progress(TextColumn("[bold]{task.description}[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=not enabled, transient=True) as bar:
        overall = bar.add_task(f"scoring {rows:,} rows", total=None)
        stages: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in stages:
                bar.update(overall, visible=False)
                stages[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(stages[stage], completed=done, total=max(total, 1))

        yield update
