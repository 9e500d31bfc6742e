"""Fleet commands over a Velociraptor server: `artifacts push`, `hunt`, `clients`, `monitor`, `collect --client`.

cli.py calls ``register(app)`` to add them and ``collect_from_client`` for `collect --client`. They only parse
options and print; hunts are run by orchestrator.fleet_hunt, the server is reached through
orchestrator.velociraptor. Failures to reach or use the server are VelociraptorError (exit 3, one line on stderr).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from orchestrator import fleet_hunt
from orchestrator.cli_common import (
    ConfigOpt,
    FailOnOpt,
    FormatOpt,
    IntelOpt,
    MinRiskOpt,
    OutputOpt,
    QuietOpt,
    Risk,
    built_risk,
    check_writable,
    err,
    finish,
    reports_errors,
    show_progress,
)
from orchestrator.config import load_config
from orchestrator.errors import InputError
from orchestrator.intel import load_intel
from orchestrator.intel.store import load_into
from orchestrator.model import risk_rank
from orchestrator.pipeline import analyse
from orchestrator.reports import Format
from orchestrator.store import Store
from orchestrator.velociraptor import api, monitor, pull

FINDING_LABEL = fleet_hunt.FINDING_LABEL

ApiConfigOpt = Annotated[Path | None, typer.Option(
    "--api-config", help=f"Velociraptor API client config (default: ${api.API_FILE_ENV}, then ~/.pyvelociraptorrc).")]


class ClientsFormat(str, Enum):
    text = "text"
    json = "json"


@contextmanager
def _connected(api_config: Path | None, timeout: float = api.DEFAULT_TIMEOUT) -> Iterator[api.VelociraptorClient]:
    client = api.connect(api_config, timeout=timeout)
    try:
        yield client
    finally:
        client.close()


def _note(quiet: bool, text: str) -> None:
    if not quiet:
        err.print(text, highlight=False, markup=False, soft_wrap=True)


def push(api_config: Path | None, quiet: bool = False) -> list[str]:
    with _connected(api_config) as client:
        names = api.push_artifacts(client)
    _note(quiet, f"pushed {len(names)} artifacts to {client.endpoint}: {', '.join(names)}")
    return names


@contextmanager
def _progress_bar(quiet: bool) -> Iterator[fleet_hunt.Progress]:
    """A progress callback drawing clients targeted, online, scheduled, finished, with errors, and rows."""
    with Progress(TextColumn("[bold]{task.fields[hunt]}[/]"), BarColumn(),
                  TextColumn("{task.fields[targeted]} targeted, {task.fields[online]} online, "
                             "{task.fields[scheduled]} scheduled, {task.fields[finished]} finished, "
                             "{task.fields[errors]} with errors, {task.fields[rows]} rows"),
                  TimeElapsedColumn(), console=err, disable=not show_progress(quiet), transient=True) as bar:
        task = bar.add_task("hunt", total=None, hunt="", targeted="?", online="?", scheduled=0, finished=0,
                            errors=0, rows=0)

        def update(p: pull.PullProgress) -> None:
            expect = p.targeted or 0
            bar.update(task, total=max(expect, p.scheduled) or None, completed=p.finished + p.errors,
                       hunt=p.hunt_id, targeted="?" if p.targeted is None else p.targeted,
                       online="?" if p.online is None else p.online, scheduled=p.scheduled, finished=p.finished,
                       errors=p.errors, rows=p.rows)

        yield update


def collect_from_client(client_id: str, api_config: Path | None, output: Path | None = None, *,
                        quiet: bool = False, wait: float = 300.0, artifact: str = api.ARTIFACT,
                        store: Store | None = None) -> Store:
    """Collect the netstat artifact on one client, store its rows, and write them as JSONL to ``output``."""
    if not client_id.startswith("C."):
        raise InputError(f"--client {client_id!r}: a Velociraptor client id looks like C.0123456789abcdef")
    store = store or Store()
    with _connected(api_config) as client:
        hostnames = {c.client_id: c.hostname for c in api.list_clients(client)}
        if client_id not in hostnames:
            raise api.VelociraptorError(f"Velociraptor API {client.endpoint}: unknown client {client_id}")
        _note(quiet, f"collecting {artifact} on {client_id} ({hostnames[client_id]})...")
        flow = api.collect_client(client, client_id, artifact, wait=wait)
        if flow.state == "ERROR":
            raise api.VelociraptorError(f"Velociraptor API {client.endpoint} (client {client_id}): collection "
                                        f"{flow.flow_id} failed: {flow.status}")
        rows, rejected = pull.pull_flow(client, store, f"collect:{client_id}", flow, artifact,
                                        hostnames.get(client_id, ""))
    if output is not None:
        _write_jsonl(store, output)
    _note(quiet, f"collected {rows} rows from {client_id}" + (f" ({rejected} rejected)" if rejected else "")
          + (f" into {output}" if output else ""))
    return store


def _write_jsonl(store: Store, output: Path) -> None:
    try:
        handle = sys.stdout if str(output) == "-" else output.open("w", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None
    try:
        for table, kind in (("connections", "connection"), ("listeners", "listener")):
            cursor = store.con.execute(f"SELECT * EXCLUDE (process_identity) FROM {table} ORDER BY host, pid")
            names = [d[0] for d in cursor.description]
            while batch := cursor.fetchmany(5000):
                for row in batch:
                    record = {k: (v.isoformat() + "Z" if isinstance(v, datetime) else v) for k, v in zip(names, row)}
                    if kind != "connection":
                        record = {"kind": kind, **record}
                    handle.write(json.dumps(record) + "\n")
    finally:
        if handle is not sys.stdout:
            handle.close()


def _seen(last_seen: float | None) -> str:
    """A client's last-seen time in UTC, with the zone said."""
    if not last_seen:
        return "never"
    return datetime.fromtimestamp(last_seen, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def register(app: typer.Typer) -> None:
    """Add `artifacts push`, `hunt`, `clients` and `monitor enable|disable` to connhunt's command line."""
    artifacts_app = typer.Typer(help="Manage connhunt's Velociraptor artifacts on the server.", no_args_is_help=True)

    @artifacts_app.command("push")
    @reports_errors
    def artifacts_push(api_config: ApiConfigOpt = None, quiet: QuietOpt = False) -> None:
        """Upload the Custom.Connhunt.* artifacts to the server (replacing older versions; safe to repeat).

        Example: connhunt artifacts push --api-config api.config.yaml
        """
        names = push(api_config, quiet=True)
        if not quiet:
            err.print(f"pushed {len(names)} artifacts: {', '.join(names)}", highlight=False, soft_wrap=True)

    app.add_typer(artifacts_app, name="artifacts")

    @app.command("hunt")
    @reports_errors
    def hunt(
        label: Annotated[str | None, typer.Option(help="Only clients with this label.")] = None,
        os_name: Annotated[str | None, typer.Option("--os", help="Only clients of this OS: linux, windows, "
                                                                  "darwin.")] = None,
        expires: Annotated[str, typer.Option(help="Hunt lifetime on the server: 90s, 15m, 1h, 2d.")] = "1h",
        resume: Annotated[str | None, typer.Option("--resume", metavar="HUNT_ID",
                                                   help="Pull the rest of an earlier hunt instead of starting "
                                                        "one.")] = None,
        label_findings: Annotated[bool, typer.Option("--label-findings", help=f"Label clients with findings "
                                                     f"at or above --min-risk as {FINDING_LABEL}.")] = False,
        api_config: ApiConfigOpt = None,
        db: Annotated[Path | None, typer.Option("--db", help="DuckDB file for the hunt's rows (default: "
                                                "~/.local/share/connhunt/hunt-<id>.duckdb).")] = None,
        wait: Annotated[float, typer.Option(help="Seconds to wait for clients to finish.")] = 300.0,
        artifact: Annotated[str, typer.Option(help="Artifact to hunt with.")] = api.ARTIFACT,
        param: Annotated[list[str] | None, typer.Option(
            "--param", metavar="NAME=VALUE", help="An artifact parameter (repeatable), e.g. --param "
                                                  "ProcessNameRegex=nginx; passed to VQL as data.")] = None,
        monitor_window: Annotated[str | None, typer.Option(
            "--monitor-window", help="Also pull the hunted clients' Custom.Connhunt.Monitor connections of this "
                                     "long (90s, 15m, 1h) for beacon timing; needs `connhunt monitor enable`.")] = None,
        watch: Annotated[str | None, typer.Option(
            "--watch", help="Also watch the clients' connections for this long (90s, 5m) within the hunt itself "
                            "(Custom.Connhunt.MonitorWindow): beacon timing without a standing monitor.")] = None,
        fmt: FormatOpt = Format.text,
        min_risk: MinRiskOpt = Risk.Medium,
        fail_on: FailOnOpt = None,
        config: ConfigOpt = None,
        intel: IntelOpt = None,
        output: OutputOpt = None,
        quiet: QuietOpt = False,
    ) -> None:
        """Hunt the fleet through Velociraptor: collect every matching client's connections, score them.

        The collection starts at once on clients online now and reaches the others when they next check in.
        Rows land in a DuckDB file as each client finishes; an interrupted hunt resumes with --resume HUNT_ID
        and stores every row exactly once. Exit codes: 0 ok; 1 findings at or above --fail-on; 2 bad usage
        (also: --db unusable, a label no client has); 3 collection failed (server unreachable, credentials
        refused, hunt unknown or expired).

        Example: connhunt hunt --label servers --os linux --expires 1h --format json
        """
        if resume and (label or os_name or param or watch):
            raise typer.BadParameter("--resume continues an existing hunt; it takes no --label, --os, --param or "
                                     "--watch")
        if os_name and os_name.lower() not in ("linux", "windows", "darwin"):
            raise typer.BadParameter(f"--os {os_name!r}: use linux, windows or darwin")
        try:
            api.parse_duration(expires)
            window = api.parse_duration(monitor_window) if monitor_window else None
            watch_seconds = api.parse_duration(watch) if watch else None
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        if wait <= 0:
            raise typer.BadParameter("--wait must be greater than 0")
        parameters = fleet_hunt.parse_parameters(param or ())
        cfg = load_config(config)
        # read (and so check) the intel files before anything is launched on the fleet
        iocs = list(load_intel([*cfg.intel, *(str(p) for p in intel or [])]))
        check_writable(output, "report")  # before the hunt is launched on the fleet
        with _connected(api_config) as client, _progress_bar(quiet) as on_progress:
            if resume:
                result = fleet_hunt.resume(client, resume, db, wait=wait, artifact=artifact,
                                           monitor_window=window, on_progress=on_progress)
            else:
                plan = fleet_hunt.HuntPlan(label=label, os_name=os_name, expires=expires, artifact=artifact,
                                           parameters=parameters, wait=wait + (watch_seconds or 0),
                                           monitor_window=window, watch=watch_seconds)

                def started(hunt_id: str, p: pull.PullProgress) -> None:
                    _note(quiet, f"hunt {hunt_id} started on {client.endpoint}: {p.targeted} client(s) targeted, "
                                 f"{p.online} online now (scheduled at once)")

                result = fleet_hunt.run(client, plan, db, on_progress=on_progress, on_started=started)
            with result.store as store:
                if iocs:
                    load_into(store.con, iocs)
                notes = [*result.progress.notes, fleet_hunt.summary(result)]
                for note in result.progress.notes:
                    _note(quiet, note)
                report = analyse(store, cfg, sources=(f"velociraptor:{result.hunt_id}",), notes=notes,
                                 min_risk=built_risk(min_risk, fail_on))
                if label_findings:
                    hosts = {f.host for f in report.findings if risk_rank(f.risk) >= risk_rank(min_risk.value)}
                    labelled = fleet_hunt.label_findings(client, store, hosts)
                    if labelled:
                        _note(quiet, f"labelled {len(labelled)} client(s) {FINDING_LABEL}: {', '.join(labelled)}")
        finish(report, fmt, min_risk, fail_on, output)

    @app.command("clients")
    @reports_errors
    def clients(
        search: Annotated[str | None, typer.Option(help="Velociraptor client search, e.g. label:servers or "
                                                        "host:web1.")] = None,
        api_config: ApiConfigOpt = None,
        fmt: Annotated[ClientsFormat, typer.Option("--format", "-f", help="text or json.")] = ClientsFormat.text,
    ) -> None:
        """List the server's clients: id, hostname, OS, labels, last seen (UTC).

        Example: connhunt clients --search label:servers --format json
        """
        with _connected(api_config) as client:
            rows = api.list_clients(client, search)
        if fmt is ClientsFormat.json:
            sys.stdout.write(json.dumps([c.__dict__ for c in rows], indent=2, default=list) + "\n")
            return
        for c in rows:
            sys.stdout.write(f"{c.client_id}\t{c.hostname}\t{c.os}\t{','.join(c.labels) or '-'}\t"
                             f"{_seen(c.last_seen)}\n")

    monitor_app = typer.Typer(help=f"Install or remove {monitor.ARTIFACT} in the server's client event monitoring "
                                   f"table.", no_args_is_help=True)

    @monitor_app.command("enable")
    @reports_errors
    def monitor_enable(
        label: Annotated[str | None, typer.Option(help="Only clients with this label (default: all clients).")] = None,
        interval: Annotated[int, typer.Option(min=1, help="Seconds between two samples of the socket table; "
                                                          "connections shorter than this can be missed.")] = 10,
        batch_wait: Annotated[int | None, typer.Option(
            "--batch-wait", min=1, help="Seconds a client may hold events before uploading them (default: the "
                                        "server's, about 2 minutes).")] = None,
        api_config: ApiConfigOpt = None,
        quiet: QuietOpt = False,
    ) -> None:
        """Run Custom.Connhunt.Monitor on clients, so hunts with --monitor-window get connection timing.

        Safe to repeat (running it again with other options replaces the settings). Push the artifacts first.
        Clients pick the change up the next time they talk to the server. Exit codes: 0 ok; 2 bad usage;
        3 the server could not be reached or refused the change.

        Example: connhunt monitor enable --label servers --interval 5
        """
        with _connected(api_config) as client:
            changed = monitor.enable(client, label=label, interval=interval, batch_wait=batch_wait)
        if not quiet:
            where = f"clients labelled {label}" if label else "all clients"
            err.print(f"{monitor.ARTIFACT} {'enabled' if changed else 'already enabled'} on {where} "
                      f"(every {interval}s)", highlight=False, soft_wrap=True)

    @monitor_app.command("disable")
    @reports_errors
    def monitor_disable(
        label: Annotated[str | None, typer.Option(help="The label group to remove it from (default: the "
                                                       "all-clients group).")] = None,
        api_config: ApiConfigOpt = None,
        quiet: QuietOpt = False,
    ) -> None:
        """Stop running Custom.Connhunt.Monitor on clients (safe to repeat).

        Exit codes: 0 ok (also when it was not installed); 3 the server could not be reached or refused the change.

        Example: connhunt monitor disable --label servers
        """
        with _connected(api_config) as client:
            removed = monitor.disable(client, label=label)
        if not quiet:
            where = f"clients labelled {label}" if label else "all clients"
            err.print(f"{monitor.ARTIFACT} {'disabled' if removed else 'was not enabled'} on {where}",
                      highlight=False, soft_wrap=True)

    app.add_typer(monitor_app, name="monitor")
