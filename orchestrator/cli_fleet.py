"""Fleet commands over a Velociraptor server: `artifacts push`, `hunt`, `clients`, `monitor`, `collect --client`.

cli.py calls ``register(app)`` to add them and ``collect_from_client`` for `collect --client`. They only parse
options, call orchestrator.velociraptor and the pipeline, and print; failures to reach or use the server are
VelociraptorError (exit 3, one line on stderr).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from orchestrator.cli_common import (
    ConfigOpt,
    FailOnOpt,
    FormatOpt,
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
from orchestrator.errors import CollectionError, InputError
from orchestrator.model import risk_rank
from orchestrator.pipeline import analyse
from orchestrator.reports import Format
from orchestrator.store import Store
from orchestrator.velociraptor import api, monitor, pull

FINDING_LABEL = "connhunt-finding"

ApiConfigOpt = Annotated[Path | None, typer.Option(
    "--api-config", help=f"Velociraptor API client config (default: ${api.API_FILE_ENV}, then ~/.pyvelociraptorrc).")]


def data_dir() -> Path:
    """Where hunt databases live unless --db says otherwise."""
    base = os.environ.get("CONNHUNT_DATA") or os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local/share")
    return Path(base) / ("" if os.environ.get("CONNHUNT_DATA") else "connhunt")


def hunt_db_path(hunt_id: str, db: Path | None) -> Path:
    path = db or data_dir() / f"hunt-{hunt_id}.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _connected(api_config: Path | None, timeout: float = api.DEFAULT_TIMEOUT) -> Iterator[api.VelociraptorClient]:
    client = api.connect(api_config, timeout=timeout)
    try:
        yield client
    finally:
        client.close()


def push(api_config: Path | None, quiet: bool = False) -> list[str]:
    with _connected(api_config) as client:
        names = api.push_artifacts(client)
    if not quiet:
        err.print(f"pushed {len(names)} artifacts to {client.endpoint}: {', '.join(names)}", highlight=False,
                  soft_wrap=True)
    return names


def _expected_clients(clients: list[api.ClientInfo], label: str | None, os_name: str | None,
                      recent: float = 600.0) -> int:
    """Clients the hunt should reach: matching label and OS, and seen in the last ``recent`` seconds."""
    now = datetime.now().timestamp()
    return sum(1 for c in clients
               if (not label or label in c.labels) and (not os_name or c.os.lower() == os_name.lower())
               and c.last_seen is not None and now - c.last_seen <= recent)


def run_hunt(*, api_config: Path | None, label: str | None, os_name: str | None, expires: str,
             resume: str | None, db: Path | None, wait: float, artifact: str, quiet: bool,
             parameters: dict[str, Any] | None = None,
             monitor_window: int | None = None) -> tuple[Store, str, pull.PullProgress]:
    """Start (or resume) a hunt and pull its results into a DuckDB file. Returns the store, hunt id, progress.

    With ``monitor_window`` (seconds), also pull each hunted client's Custom.Connhunt.Monitor connections of that
    window, so beacon scoring sees every reconnect and not just the one connection a snapshot catches.
    """
    with _connected(api_config) as client:
        clients = api.list_clients(client)
        if resume:
            hunt_id = resume
            api.hunt_info(client, hunt_id)  # unknown hunt: fail before creating a database for it
            expect = None
        else:
            hunt_id = api.create_hunt(client, artifact, label=label, os=os_name, expires=expires,
                                      parameters=parameters)
            expect = _expected_clients(clients, label, os_name) or None
            if not quiet:
                err.print(f"hunt {hunt_id} started on {client.endpoint} ({expect or 'no'} matching client(s) "
                          f"online); resume with: connhunt hunt --resume {hunt_id}", highlight=False, soft_wrap=True)
        store = Store(hunt_db_path(hunt_id, db))
        hostnames = {c.client_id: c.hostname for c in clients}
        try:
            progress = _pull_with_bar(client, store, hunt_id, artifact, expect, wait, hostnames, quiet)
            if monitor_window:
                _pull_monitor(client, store, hunt_id, monitor_window, hostnames, progress, quiet)
        except api.VelociraptorError as exc:
            store.close()
            raise api.VelociraptorError(f"{exc}; rows pulled so far are kept, resume with: "
                                        f"connhunt hunt --resume {hunt_id}") from None
        except KeyboardInterrupt:
            store.close()
            raise CollectionError(f"hunt {hunt_id}: interrupted; rows pulled so far are kept, resume with: "
                                  f"connhunt hunt --resume {hunt_id}") from None
    return store, hunt_id, progress


def _pull_monitor(client: api.VelociraptorClient, store: Store, hunt_id: str, window: int,
                  hostnames: dict[str, str], progress: pull.PullProgress, quiet: bool) -> None:
    # The hunted clients are the ones the ledger holds flows of (on a resume too, where progress starts empty).
    client_ids = {c for c, f in pull.pulled(store, hunt_id) if f != monitor.LEDGER_FLOW}
    rows, rejected, skipped = monitor.pull_events(client, store, hunt_id, client_ids, window, hostnames=hostnames)
    progress.notes.append(f"hunt {hunt_id}: {rows} connection(s) from {monitor.ARTIFACT} events of the last "
                          f"{window}s" + (f" ({rejected} rejected)" if rejected else "")
                          + (f"; {skipped} client(s) pulled by an earlier run" if skipped else ""))
    if not quiet:
        err.print(progress.notes[-1], highlight=False, soft_wrap=True)


def _pull_with_bar(client: api.VelociraptorClient, store: Store, hunt_id: str, artifact: str,
                   expect: int | None, wait: float, hostnames: dict[str, str], quiet: bool) -> pull.PullProgress:
    with Progress(TextColumn(f"[bold]{hunt_id}[/]"), BarColumn(),
                  TextColumn("{task.fields[scheduled]} scheduled, {task.fields[finished]} finished, "
                             "{task.fields[errors]} with errors, {task.fields[rows]} rows"),
                  TimeElapsedColumn(), console=err, disable=not show_progress(quiet), transient=True) as bar:
        task = bar.add_task("hunt", total=expect, scheduled=0, finished=0, errors=0, rows=0)

        def update(p: pull.PullProgress) -> None:
            bar.update(task, total=max(expect or 0, p.scheduled) or None, completed=p.finished + p.errors,
                       scheduled=p.scheduled, finished=p.finished, errors=p.errors, rows=p.rows)

        return pull.pull_hunt(client, store, hunt_id, artifact, expect=expect, wait=wait, hostnames=hostnames,
                              on_progress=update)


def label_finding_clients(api_config: Path | None, store: Store, hosts: set[str],
                          label: str = FINDING_LABEL) -> list[str]:
    """Label the Velociraptor clients behind these hosts (store host -> host_id, the client id)."""
    if not hosts:
        return []
    rows = store.query("SELECT DISTINCT host, host_id FROM connections WHERE host_id LIKE 'C.%'")
    client_ids = sorted({r["host_id"] for r in rows if r["host"] in hosts})
    with _connected(api_config) as client:
        for client_id in client_ids:
            api.label_client(client, client_id, label)
    return client_ids


def clients_rows(api_config: Path | None, search: str | None = None) -> list[api.ClientInfo]:
    with _connected(api_config) as client:
        return api.list_clients(client, search)


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
        if not quiet:
            err.print(f"collecting {artifact} on {client_id} ({hostnames[client_id]})...", highlight=False,
                      soft_wrap=True)
        flow = api.collect_client(client, client_id, artifact, wait=wait)
        if flow.state == "ERROR":
            raise api.VelociraptorError(f"Velociraptor API {client.endpoint} (client {client_id}): collection "
                                        f"{flow.flow_id} failed: {flow.status}")
        rows, rejected = pull.pull_flow(client, store, f"collect:{client_id}", flow, artifact,
                                        hostnames.get(client_id, ""))
    if output is not None:
        _write_jsonl(store, output)
    if not quiet:
        err.print(f"collected {rows} connections from {client_id}" + (f" ({rejected} rejected)" if rejected else "")
                  + (f" into {output}" if output else ""), highlight=False, soft_wrap=True)
    return store


def _write_jsonl(store: Store, output: Path) -> None:
    try:
        handle = sys.stdout if str(output) == "-" else output.open("w", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None
    try:
        cursor = store.con.execute("SELECT * EXCLUDE (process_identity) FROM connections ORDER BY host, pid")
        names = [d[0] for d in cursor.description]
        while batch := cursor.fetchmany(5000):
            for row in batch:
                record = {k: (v.isoformat() + "Z" if isinstance(v, datetime) else v) for k, v in zip(names, row)}
                handle.write(json.dumps(record) + "\n")
    finally:
        if handle is not sys.stdout:
            handle.close()


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
        monitor_window: Annotated[str | None, typer.Option(
            "--monitor-window", help="Also pull the hunted clients' Custom.Connhunt.Monitor connections of this "
                                     "long (90s, 15m, 1h) for beacon timing; needs `connhunt monitor enable`.")] = None,
        fmt: FormatOpt = Format.text,
        min_risk: MinRiskOpt = Risk.medium,
        fail_on: FailOnOpt = None,
        config: ConfigOpt = None,
        output: OutputOpt = None,
        quiet: QuietOpt = False,
    ) -> None:
        """Hunt the fleet through Velociraptor: collect every matching client's connections, score them.

        Rows land in a DuckDB file as each client finishes; an interrupted hunt resumes with --resume HUNT_ID
        and stores every row exactly once. Exit codes: 0 ok; 1 findings at or above --fail-on; 2 bad usage;
        3 collection failed (server unreachable, credentials refused, hunt unknown or expired).

        Example: connhunt hunt --label servers --os linux --expires 1h --format json
        """
        if resume and (label or os_name):
            raise typer.BadParameter("--resume continues an existing hunt; it takes no --label or --os")
        if os_name and os_name.lower() not in ("linux", "windows", "darwin"):
            raise typer.BadParameter(f"--os {os_name!r}: use linux, windows or darwin")
        try:
            api.parse_duration(expires)
            window = api.parse_duration(monitor_window) if monitor_window else None
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        if wait <= 0:
            raise typer.BadParameter("--wait must be greater than 0")
        cfg = load_config(config)
        check_writable(output, "report")  # before the hunt is launched on the fleet
        store, hunt_id, progress = run_hunt(api_config=api_config, label=label, os_name=os_name, expires=expires,
                                            resume=resume, db=db, wait=wait, artifact=artifact, quiet=quiet,
                                            monitor_window=window)
        with store:
            notes = [*progress.notes, f"hunt {hunt_id}: {progress.scheduled} client(s) scheduled, "
                     f"{progress.finished} finished, {progress.errors} with errors; rows in {store.path}"]
            report = analyse(store, cfg, sources=(f"velociraptor:{hunt_id}",), notes=notes,
                             min_risk=built_risk(min_risk, fail_on))
            if label_findings:
                hosts = {f.host for f in report.findings if risk_rank(f.risk) >= risk_rank(min_risk.label)}
                labelled = label_finding_clients(api_config, store, hosts)
                if labelled and not quiet:
                    err.print(f"labelled {len(labelled)} client(s) {FINDING_LABEL}: {', '.join(labelled)}",
                              highlight=False, soft_wrap=True)
        finish(report, fmt, min_risk, fail_on, output)

    @app.command("clients")
    @reports_errors
    def clients(
        search: Annotated[str | None, typer.Option(help="Velociraptor client search, e.g. label:servers or "
                                                        "host:web1.")] = None,
        api_config: ApiConfigOpt = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    ) -> None:
        """List the server's clients: id, hostname, OS, labels, last seen.

        Example: connhunt clients --search label:servers --format json
        """
        if fmt not in ("text", "json"):
            raise typer.BadParameter("--format: use text or json")
        rows = clients_rows(api_config, search)
        if fmt == "json":
            sys.stdout.write(json.dumps([c.__dict__ for c in rows], indent=2, default=list) + "\n")
            return
        for c in rows:
            seen = datetime.fromtimestamp(c.last_seen).isoformat(timespec="seconds") if c.last_seen else "never"
            sys.stdout.write(f"{c.client_id}\t{c.hostname}\t{c.os}\t{','.join(c.labels) or '-'}\t{seen}\n")

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
