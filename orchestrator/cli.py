"""The `connhunt` command line: parses arguments, calls the pipeline, prints a report, sets the exit code.

Diagnostics and progress go to stderr, reports to stdout (or the file -o names), so `connhunt triage --format json
| jq` works. Every option is checked before any work starts: a bad config, baseline, report or raw-data path is one
line on stderr and exit 2 before the first second of collection.
"""

from __future__ import annotations

import inspect
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from enum import Enum
from importlib import metadata
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from agent_local.hashing import DEFAULT_MAX_HASH_BYTES
from agent_local.hostinfo import host_info
from orchestrator.baseline import attach as attach_baseline
from orchestrator.baseline import write_baseline
from orchestrator.cli_common import (
    BaselineOpt,
    ConfigOpt,
    FailOnOpt,
    FormatOpt,
    IntelOpt,
    MinRiskOpt,
    OutputOpt,
    QuietOpt,
    Risk,
    VerboseOpt,
    built_risk,
    check_database_target,
    check_writable,
    err,
    interrupted,
    interruptible,
    note,
    open_for_writing,
    reports_errors,
    scoring_progress,
    set_notes,
    set_verbose,
    show_progress,
    warning,
    write_report,
)
from orchestrator.config import Config, load_config
from orchestrator.errors import CollectionError, ExitCode, InputError, UsageError, exit_codes_help
from orchestrator.intel import load_intel
from orchestrator.intel.store import load_into
from orchestrator.pipeline import IngestStats, analyse, ingest_files, local_resolvers, normalise_raw, store_records
from orchestrator.reports import Format
from orchestrator.sources import FORMAT_NAMES
from orchestrator.store import Store

# --input-format's choices, one per entry of the sources registry
InputFormat = Enum("InputFormat", {name: name for name in FORMAT_NAMES}, type=str)  # type: ignore[misc]
EXIT_CODES_HELP = exit_codes_help()

app = typer.Typer(
    name="connhunt",
    help="Hunt for unusual network connections: which process on which host talks to something it shouldn't.\n\n"
         + EXIT_CODES_HELP,
    no_args_is_help=True,
    # Locals can hold an API key: never show them in a traceback.
    pretty_exceptions_show_locals=False,
    add_completion=False,
    # Plain click help: flags without a value show none (no "<bool>"), and the text greps like any man page.
    rich_markup_mode=None,
)

MaxHashOpt = Annotated[int, typer.Option("--max-hash-bytes", help="Skip hashing executables larger than this "
                                                                   "(0 hashes none, -1 no cap).")]
# --include-listening is the collector's old opt-in; --no-listening the opt-out once listeners are kept by default.
ListeningOpt = Annotated[bool | None, typer.Option("--include-listening/--no-listening", help="Keep or drop "
                                                   "listening sockets (default: the collector's).")]
DnsOpt = Annotated[bool, typer.Option("--dns", help="Capture DNS queries too (root).")]


def _version(value: bool) -> None:
    if value:
        try:
            version = metadata.version("connhunt")
        except metadata.PackageNotFoundError:
            version = "unknown (not installed)"
        sys.stdout.write(f"connhunt {version}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print connhunt's version and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Notes on stderr for every command, even when "
                                                                  "stderr is not a terminal.")] = False,
) -> None:
    """Hunt for unusual network connections: which process on which host talks to something it shouldn't."""
    set_verbose(verbose)


def _listening_kwargs(collect: Any, keep: bool | None) -> dict[str, bool]:
    """The collector's keyword for keeping listening sockets, whichever name its version uses (None: its default)."""
    if keep is None:
        return {}
    names = inspect.signature(collect).parameters
    for name in ("listening", "listeners", "include_listening"):
        if name in names:
            return {name: keep}
    raise UsageError("--include-listening/--no-listening: this agent_local cannot choose")


def collect_local(duration: float, interval: float, *, host: str | None, dns: bool, quiet: bool,
                  sink: IO[str] | None = None, stop: Any = None, max_hash_bytes: int = DEFAULT_MAX_HASH_BYTES,
                  listening: bool | None = None) -> Iterator[dict[str, Any]]:
    """Run agent_local for ``duration`` with a progress bar; yields its records, writing each to ``sink`` too."""
    import agent_local

    with Progress(
        TextColumn("[bold]collecting[/]"), BarColumn(), TextColumn("{task.fields[conns]} connections"),
        TimeRemainingColumn(), console=err, disable=not show_progress(quiet), transient=True,
    ) as progress:
        task = progress.add_task("collect", total=duration, conns=0)

        def on_tick(elapsed: float, connections: int) -> None:
            progress.update(task, completed=min(elapsed, duration), conns=connections)

        try:
            for record in agent_local.collect(duration=duration, interval=interval, host=host, dns=dns,
                                              on_tick=on_tick, stop=stop, max_hash_bytes=max_hash_bytes,
                                              **_listening_kwargs(agent_local.collect, listening)):
                if sink is not None:
                    sink.write(json.dumps(record, default=str) + "\n")
                yield record
        except BrokenPipeError:
            raise  # the reader of -o - left: not a failed collection (reports_errors exits 141)
        except (OSError, RuntimeError) as exc:
            raise CollectionError(f"local collection failed: {exc}") from None


def _check_sampling(duration: float, interval: float, max_hash_bytes: int, dns: bool) -> None:
    for name, value in (("--duration", duration), ("--interval", interval)):
        if not value > 0 or value == float("inf"):
            raise UsageError(f"{name} must be a number of seconds greater than 0, not {value}")
    if max_hash_bytes < -1:
        raise UsageError(f"--max-hash-bytes must be -1 (no cap), 0 (hash nothing) or a size, not {max_hash_bytes}")
    if dns:
        from agent_local.dns_capture import DnspythonMissing, require_dnspython

        try:
            require_dnspython()
        except DnspythonMissing as exc:
            raise UsageError(str(exc)) from None


def prepare(config: Path | None, baseline: Path | None, store: Store, intel: list[Path] | None = None) -> Config:
    """The config (checked in full) with --baseline applied, the baseline attached to ``store`` and the intel
    files loaded into it now: all fail here, before collection or reading starts, not after."""
    cfg = load_config(config)
    if baseline:
        cfg = replace(cfg, baseline=str(baseline))
    if cfg.baseline:
        attach_baseline(store, Path(cfg.baseline))
    paths = [*cfg.intel, *(str(p) for p in intel or [])]
    if paths:
        count = load_into(store.con, load_intel(paths, on_note=note))
        note(f"{count} indicator(s) loaded from {len(paths)} intel file(s)")
    return cfg


@contextmanager
def _raw_sink(path: Path | None) -> Iterator[IO[str] | None]:
    if path is None:
        yield None
        return
    with open_for_writing(path, "raw observations") as handle:
        yield handle


@app.command()
@reports_errors
def triage(
    duration: Annotated[float, typer.Option(help="Seconds to sample connections.")] = 60.0,
    interval: Annotated[float, typer.Option(help="Seconds between samples.")] = 1.0,
    fmt: FormatOpt = Format.text,
    min_risk: MinRiskOpt = Risk.Medium,
    fail_on: FailOnOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = None,
    save_raw: Annotated[Path | None, typer.Option("--save-raw", "--save", help="Also keep the raw observations "
                                                                               "as JSONL (connhunt score reads "
                                                                               "them).")] = None,
    dns: DnsOpt = False,
    host: Annotated[str | None, typer.Option(help="Name to report this host as.")] = None,
    baseline: BaselineOpt = None,
    intel: IntelOpt = None,
    max_hash_bytes: MaxHashOpt = DEFAULT_MAX_HASH_BYTES,
    listening: ListeningOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Collect this host's connections for a while, score them, print findings.

    Ctrl-C stops collecting early: what was collected is still saved and scored, then connhunt exits 130.

    \b
    Example: connhunt triage --duration 30 --format html -o report.html --save-raw raw.jsonl
    """
    set_notes(quiet=quiet, verbose=verbose)
    _check_sampling(duration, interval, max_hash_bytes, dns)
    store = Store()
    cfg = prepare(config, baseline, store, intel).with_resolvers(local_resolvers())
    check_writable(output, "report")
    stats = IngestStats()
    # One signal scope for collecting, saving and scoring: a Ctrl-C at any point only sets a flag, so DuckDB work
    # under way is never cut off; collection stops at its next tick and the rest runs to the end.
    with interruptible() as stop:
        with _raw_sink(save_raw) as sink:
            note(f"collecting this host's connections for {duration:g} s (Ctrl-C stops early and still scores)")
            store_records(store, normalise_raw(collect_local(duration, interval, host=host, dns=dns, quiet=quiet,
                                                             sink=sink, stop=stop, max_hash_bytes=max_hash_bytes,
                                                             listening=listening), host=host), stats)
        notes = [f"raw observations saved to {save_raw}"] if save_raw else []
        if interrupted():
            notes.append("collection was stopped early by a signal; the report covers what was collected until then")
            note("interrupted: scoring what was collected")
        with scoring_progress(quiet, sum(stats.rows.values())) as progress:
            report = analyse(store, cfg, sources=("agent_local",), notes=notes,
                             collected_hosts=(host_info(host).host,), progress=progress,
                             min_risk=built_risk(min_risk, fail_on))
        code = write_report(report, fmt, min_risk, fail_on, output)
    _exit(ExitCode.INTERRUPTED if interrupted() else code)


@app.command()
@reports_errors
def collect(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSONL file to write ('-' = stdout); "
                                                                        "collect's output is its data.")] = None,
    duration: Annotated[float, typer.Option(help="Seconds to sample connections.")] = 300.0,
    interval: Annotated[float, typer.Option(help="Seconds between samples.")] = 1.0,
    host: Annotated[str | None, typer.Option(help="Name to record this host as.")] = None,
    dns: DnsOpt = False,
    max_hash_bytes: MaxHashOpt = DEFAULT_MAX_HASH_BYTES,
    listening: ListeningOpt = None,
    client: Annotated[str | None, typer.Option("--client", help="Collect from this Velociraptor client "
                                                                   "(C.xxxx) instead of this host.")] = None,
    api_config: Annotated[Path | None, typer.Option("--api-config", help="Velociraptor API client config "
                                                                          "(with --client).")] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Record this host's connections to JSONL for scoring later, or collect one Velociraptor client.

    Ctrl-C stops early: everything collected is still written, then connhunt exits 130.

    Example: connhunt collect --duration 300 -o host.jsonl
    """
    set_notes(quiet=quiet, verbose=verbose)
    if client:
        from orchestrator.cli_fleet import collect_from_client

        collect_from_client(client, api_config, output, quiet=quiet)
        return
    if output is None:
        raise UsageError("collect: --output is required (a file, or - for stdout)")
    _check_sampling(duration, interval, max_hash_bytes, dns)
    counts = {"connection": 0, "dns": 0, "health": 0}
    to_stdout = str(output) == "-"
    handle = sys.stdout if to_stdout else open_for_writing(output, "collection")
    try:
        with interruptible() as stop:
            note(f"collecting this host's connections for {duration:g} s (Ctrl-C stops early; everything collected "
                 "is still written)")
            for record in collect_local(duration, interval, host=host, dns=dns, quiet=quiet, sink=handle, stop=stop,
                                        max_hash_bytes=max_hash_bytes, listening=listening):
                counts[record.get("kind", "connection")] = counts.get(record.get("kind", "connection"), 0) + 1
            handle.flush()
    finally:
        if not to_stdout:
            handle.close()
    note(f"wrote {counts['connection']} connections, {counts['dns']} DNS queries, {counts['health']} health notes "
         f"to {'stdout' if to_stdout else output}" + (" (stopped early by a signal)" if interrupted() else ""))
    _exit(ExitCode.INTERRUPTED if interrupted() else ExitCode.OK)


FilesArg = Annotated[list[Path], typer.Argument(
    help="connhunt JSONL or Parquet, a hunt's DuckDB file, osquery results (log, osqueryi --json, Fleet), Windows "
         "Sysmon 1/3/22 and WFP 5154/5156-5158 events (EVTX, evtx_dump/EvtxECmd/Velociraptor JSON, nxlog, "
         "Winlogbeat, Splunk JSON/CSV), or a Velociraptor collection or hunt zip; the format is read from the "
         "content (--input-format forces one). '-' reads standard input.")]
SkipBadOpt = Annotated[bool, typer.Option("--skip-bad", help="Skip malformed lines (counted) instead of stopping.")]


@app.command("score")
@reports_errors
def score_files(
    files: FilesArg,
    fmt: FormatOpt = Format.text,
    min_risk: MinRiskOpt = Risk.Medium,
    fail_on: FailOnOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = None,
    skip_bad: SkipBadOpt = False,
    baseline: BaselineOpt = None,
    intel: IntelOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    input_format: Annotated[InputFormat | None, typer.Option(
        "--input-format", help="Read every FILE as this format instead of telling it by content.")] = None,
) -> None:
    """Score data already collected; several files are several hosts, scored as one fleet.

    \b
    Example: connhunt score web1.jsonl Collection-web2.zip osqueryd.results.log Sysmon.evtx --format json
    Example: connhunt collect --duration 60 -o - | connhunt score - -o report.html --format html
    """
    set_notes(quiet=quiet, verbose=verbose)
    store = Store()
    cfg = prepare(config, baseline, store, intel)
    check_writable(output, "report")
    stats = read_inputs(files, store, skip_bad=skip_bad,
                        input_format=input_format.value if input_format else None)
    notes = [skipped_text(stats)] if stats.skipped else []
    with scoring_progress(quiet, sum(stats.rows.values())) as progress:
        report = analyse(store, cfg, sources=tuple(stats.sources), notes=notes, progress=progress,
                         min_risk=built_risk(min_risk, fail_on))
    _exit(write_report(report, fmt, min_risk, fail_on, output))


@app.command("baseline")
@reports_errors
def baseline_files(
    files: Annotated[list[Path], typer.Argument(help="Known-good data, in any format `connhunt score` reads "
                                                     "('-' reads standard input).")],
    db: Annotated[Path, typer.Option("--db", help="Baseline DuckDB file to create or extend.")],
    skip_bad: SkipBadOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Record what normal looks like: every (process, destination) pair in FILES goes into a baseline file that
    later hunts compare against with --baseline. Running it again merges more data in.

    Example: connhunt baseline last-week/*.jsonl --db fleet-baseline.duckdb
    """
    set_notes(quiet=quiet, verbose=verbose)
    check_database_target(db, "baseline")
    store = Store()
    stats = read_inputs(files, store, skip_bad=skip_bad)
    pairs = write_baseline(store, db)
    note(f"{db}: {pairs} pairs ({stats.rows['connection']} connection rows read)")


def read_inputs(files: Sequence[Path], store: Store, *, skip_bad: bool, input_format: str | None = None) -> IngestStats:
    """Read every input file (``-`` is standard input) into ``store``; with --skip-bad, at least one row must be
    valid, since an empty report would look like a clean bill of health."""
    with _stdin_spooled(files) as (paths, stdin_path):
        try:
            stats = ingest_files(paths, store, skip_bad=skip_bad, input_format=input_format)
        except InputError as exc:
            raise InputError(_name_stdin(str(exc), stdin_path)) from None
    stats.skipped = [_name_stdin(s, stdin_path) for s in stats.skipped]
    stats.sources = [_name_stdin(s, stdin_path) for s in stats.sources]
    valid = sum(n for kind, n in stats.rows.items() if kind != "health")
    if stats.skipped and not valid:
        raise InputError(f"no valid rows: all {len(stats.skipped)} line(s) read were bad; first: {stats.skipped[0]}")
    if stats.skipped:
        warning(skipped_text(stats))  # input was dropped: said even when stderr is not a terminal
    return stats


def skipped_text(stats: IngestStats) -> str:
    return f"skipped {len(stats.skipped)} bad line(s); first: {stats.skipped[0]}"


STDIN_NAME = "<stdin>"


@contextmanager
def _stdin_spooled(files: Sequence[Path]) -> Iterator[tuple[list[Path], Path | None]]:
    """``-`` among the files becomes a temporary copy of stdin: readers tell formats apart by seeking."""
    if sum(1 for f in files if str(f) == "-") > 1:
        raise UsageError("'-' (standard input) can be given only once")
    if not any(str(f) == "-" for f in files):
        yield list(files), None
        return
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("'-' reads standard input, but it is a terminal: pipe data in (collect -o - | score -)")
    with tempfile.TemporaryDirectory(prefix="connhunt-stdin-") as tmp:
        spooled = Path(tmp) / "stdin"
        with spooled.open("wb") as handle:
            shutil.copyfileobj(sys.stdin.buffer, handle, 1 << 20)
        yield [spooled if str(f) == "-" else f for f in files], spooled


def _name_stdin(text: str, stdin_path: Path | None) -> str:
    return text.replace(str(stdin_path), STDIN_NAME) if stdin_path else text


def _exit(code: ExitCode) -> None:
    if code:
        raise typer.Exit(int(code))


_registered: list[bool] = []


def _register_command_groups() -> None:
    """Command groups that live in their own modules (once, however often main() runs in one process)."""
    if _registered:
        return
    from orchestrator import cli_export, cli_fleet, cli_lab

    cli_export.register(app)
    cli_fleet.register(app)
    cli_lab.register(app)
    __import__("orchestrator.cli_rules", fromlist=["register"]).register(app)  # rules, pivot
    _registered.append(True)


def main() -> None:
    _register_command_groups()
    app(prog_name="connhunt")
