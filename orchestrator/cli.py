"""The `connhunt` command line: parses arguments, calls the pipeline, prints a report, sets the exit code.

Diagnostics and progress go to stderr, reports to stdout, so `connhunt triage --format json | jq` works.

Exit codes: 0 ok (findings, if any, printed); 1 findings at or above --fail-on; 2 bad usage or input;
3 collection failed.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from agent_local.hostinfo import host_info
from orchestrator.baseline import write_baseline
from orchestrator.cli_common import (
    BaselineOpt,
    ConfigOpt,
    FailOnOpt,
    FormatOpt,
    MinRiskOpt,
    QuietOpt,
    Risk,
    err,
    finish,
    reports_errors,
    show_progress,
)
from orchestrator.config import Config, load_config
from orchestrator.errors import CollectionError, InputError
from orchestrator.pipeline import IngestStats, analyse, ingest_files, local_resolvers, normalise_raw, store_records
from orchestrator.reports import Format
from orchestrator.sources import FORMAT_NAMES
from orchestrator.store import Store

# --input-format's choices, one per entry of the sources registry
InputFormat = Enum("InputFormat", {name: name for name in FORMAT_NAMES}, type=str)  # type: ignore[misc]
EXIT_CODES_HELP = ("Exit codes: 0 ok (findings, if any, printed); 1 findings at or above --fail-on; "
                   "2 bad usage or input; 3 collection failed.")

app = typer.Typer(
    name="connhunt",
    help="Hunt for unusual network connections: which process on which host talks to something it shouldn't.\n\n"
         + EXIT_CODES_HELP,
    no_args_is_help=True,
    # Locals can hold an API key: never show them in a traceback.
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """Ctrl-C or SIGTERM ends collection early; what was collected is still scored and saved."""
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in previous:
            signal.signal(sig, handler)
    try:
        yield stop
    finally:
        if threading.current_thread() is threading.main_thread():
            for sig, old in previous.items():
                signal.signal(sig, old)


def collect_local(duration: float, interval: float, *, host: str | None, dns: bool, quiet: bool,
                  sink: Any = None) -> Iterator[dict[str, Any]]:
    """Run agent_local for ``duration`` with a progress bar; yields its records, writing each to ``sink`` too."""
    import agent_local

    with _stop_on_signals() as stop, Progress(
        TextColumn("[bold]collecting[/]"), BarColumn(), TextColumn("{task.fields[conns]} connections"),
        TimeRemainingColumn(), console=err, disable=not show_progress(quiet), transient=True,
    ) as progress:
        task = progress.add_task("collect", total=duration, conns=0)

        def on_tick(elapsed: float, connections: int) -> None:
            progress.update(task, completed=min(elapsed, duration), conns=connections)

        try:
            for record in agent_local.collect(duration=duration, interval=interval, host=host, dns=dns,
                                              on_tick=on_tick, stop=stop):
                if sink is not None:
                    sink.write(json.dumps(record, default=str) + "\n")
                yield record
        except (OSError, RuntimeError) as exc:
            raise CollectionError(f"local collection failed: {exc}") from None


def _positive(value: float, name: str) -> float:
    if value <= 0:
        raise typer.BadParameter(f"{name} must be greater than 0")
    return value


@app.command()
@reports_errors
def triage(
    duration: Annotated[float, typer.Option(help="Seconds to sample connections.")] = 60.0,
    interval: Annotated[float, typer.Option(help="Seconds between samples.")] = 1.0,
    fmt: FormatOpt = Format.text,
    min_risk: MinRiskOpt = Risk.medium,
    fail_on: FailOnOpt = None,
    config: ConfigOpt = None,
    save: Annotated[Path | None, typer.Option("--save", "-o", help="Also keep the raw observations as JSONL.")] = None,
    dns: Annotated[bool, typer.Option("--dns", help="Capture DNS queries too (root).")] = False,
    host: Annotated[str | None, typer.Option(help="Name to report this host as.")] = None,
    baseline: BaselineOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Collect this host's connections for a while, score them, print findings.

    Example: connhunt triage --duration 30 --interval 1 --format json
    """
    _positive(duration, "--duration")
    _positive(interval, "--interval")
    cfg = with_baseline(load_config(config), baseline).with_resolvers(local_resolvers())
    store = Store()
    stats = IngestStats()
    sink = save.open("w", encoding="utf-8") if save else None
    try:
        store_records(store, normalise_raw(collect_local(duration, interval, host=host, dns=dns, quiet=quiet,
                                                         sink=sink), host=host), stats)
    finally:
        if sink:
            sink.close()
    notes = [f"raw observations saved to {save}"] if save else []
    report = analyse(store, cfg, sources=("agent_local",), notes=notes, collected_hosts=(host_info(host).host,))
    finish(report, fmt, min_risk, fail_on)


@app.command()
@reports_errors
def collect(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSONL file to write ('-' = stdout).")] = None,
    duration: Annotated[float, typer.Option(help="Seconds to sample connections.")] = 300.0,
    interval: Annotated[float, typer.Option(help="Seconds between samples.")] = 1.0,
    host: Annotated[str | None, typer.Option(help="Name to record this host as.")] = None,
    dns: Annotated[bool, typer.Option("--dns", help="Capture DNS queries too (root).")] = False,
    client: Annotated[str | None, typer.Option("--client", help="Collect from this Velociraptor client "
                                                                   "(C.xxxx) instead of this host.")] = None,
    api_config: Annotated[Path | None, typer.Option("--api-config", help="Velociraptor API client config "
                                                                          "(with --client).")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Record this host's connections to JSONL for scoring later, or collect one Velociraptor client.

    Example: connhunt collect --duration 300 -o host.jsonl
    """
    if client:
        from orchestrator.cli_fleet import collect_from_client

        collect_from_client(client, api_config, output, quiet=quiet)
        return
    if output is None:
        raise typer.BadParameter("--output is required (a file, or - for stdout)")
    _positive(duration, "--duration")
    _positive(interval, "--interval")
    counts = {"connection": 0, "dns": 0, "health": 0}
    try:
        handle = sys.stdout if str(output) == "-" else output.open("w", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None
    try:
        for record in collect_local(duration, interval, host=host, dns=dns, quiet=quiet, sink=handle):
            counts[record.get("kind", "connection")] = counts.get(record.get("kind", "connection"), 0) + 1
    finally:
        if handle is not sys.stdout:
            handle.close()
    if not quiet:
        err.print(f"wrote {counts['connection']} connections, {counts['dns']} DNS queries, "
                  f"{counts['health']} health notes to {output}")


@app.command("score")
@reports_errors
def score_files(
    files: Annotated[list[Path], typer.Argument(help="connhunt JSONL, osquery results (log or osqueryi --json), "
                                                     "Windows Sysmon 1/3/22 and WFP 5154/5156-5158 events (EVTX, "
                                                     "evtx_dump/EvtxECmd/Velociraptor JSON, nxlog, Winlogbeat, "
                                                     "Splunk JSON/CSV), or a Velociraptor collection zip; the "
                                                     "format is read from the content.")],
    fmt: FormatOpt = Format.text,
    min_risk: MinRiskOpt = Risk.medium,
    fail_on: FailOnOpt = None,
    config: ConfigOpt = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip malformed lines (counted) instead of "
                                                              "stopping.")] = False,
    baseline: BaselineOpt = None,
    quiet: QuietOpt = False,
    input_format: Annotated[InputFormat | None, typer.Option(
        "--input-format", help="Read every FILE as this format instead of telling it by content.")] = None,
) -> None:
    """Score data already collected; several files are several hosts, scored as one fleet.

    Example: connhunt score web1.jsonl Collection-web2.zip osqueryd.results.log Sysmon.evtx --format json
    """
    cfg = with_baseline(load_config(config), baseline)
    store = Store()
    stats = ingest_files(files, store, skip_bad=skip_bad, input_format=input_format.value if input_format else None)
    notes = []
    if stats.skipped:
        notes.append(f"skipped {len(stats.skipped)} bad line(s); first: {stats.skipped[0]}")
        if not quiet:
            err.print(f"[yellow]skipped {len(stats.skipped)} bad line(s)[/]; first: {stats.skipped[0]}",
                      highlight=False)
    finish(analyse(store, cfg, sources=tuple(stats.sources), notes=notes), fmt, min_risk, fail_on)


@app.command("baseline")
@reports_errors
def baseline_files(
    files: Annotated[list[Path], typer.Argument(help="Known-good data, in any format `connhunt score` reads.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Baseline file to create or extend.")],
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip malformed lines (counted).")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Record what normal looks like: every (process, destination) pair in FILES goes into a baseline file that
    later hunts compare against with --baseline. Running it again merges more data in.

    Example: connhunt baseline last-week/*.jsonl -o fleet-baseline.duckdb
    """
    store = Store()
    stats = ingest_files(files, store, skip_bad=skip_bad)
    pairs = write_baseline(store, output)
    if not quiet:
        err.print(f"{output}: {pairs} pairs ({stats.rows['connection']} connection rows read"
                  f"{f', {len(stats.skipped)} bad lines skipped' if stats.skipped else ''})", highlight=False)


def with_baseline(config: Config, baseline: Path | None) -> Config:
    return replace(config, baseline=str(baseline)) if baseline else config


def _register_command_groups() -> None:
    """Command groups that live in their own modules."""
    from orchestrator import cli_fleet, cli_lab

    cli_fleet.register(app)
    cli_lab.register(app)


def main() -> None:
    _register_command_groups()
    app()
