"""Fleet hunts through Velociraptor as library calls: run, resume, label the clients with findings.

The CLI (cli_fleet.py), the benchmarks and a library user call these; nothing here prints. A hunt is checked
before it is launched (the database is validated and locked, the label matches clients), its flow is scheduled
right away on the clients online now (hunt_add) while the hunt itself stays for the rest, and its rows are pulled
into a DuckDB file as each flow finishes (velociraptor/pull.py: ledgered, exactly once, resumable).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from orchestrator.errors import CollectionError, InputError
from orchestrator.store import Store
from orchestrator.velociraptor import api, monitor, pull

FINDING_LABEL = "connhunt-finding"
# A client the server heard from this recently is online: it polls every few seconds while connected, so a minute
# of silence means it is not (a client seen ten minutes ago will not answer a hunt now).
ONLINE_SECONDS = 60.0
WINDOW_ARTIFACT = "Custom.Connhunt.MonitorWindow"

Progress = Callable[[pull.PullProgress], None]


@dataclass(frozen=True)
class HuntPlan:
    """What to hunt: targets, artifact and its parameters, how long to wait, which timing to add."""

    label: str | None = None
    os_name: str | None = None
    expires: str = "1h"
    artifact: str = api.ARTIFACT
    parameters: Mapping[str, str] = field(default_factory=dict)
    wait: float = 300.0
    monitor_window: int | None = None  # also pull the standing monitor's connections of this many seconds
    watch: int | None = None  # also run Custom.Connhunt.MonitorWindow for this many seconds in the hunt itself
    watch_interval: int = 1


@dataclass
class HuntResult:
    store: Store
    hunt_id: str
    progress: pull.PullProgress


def data_dir() -> Path:
    """Where hunt databases live unless --db says otherwise."""
    base = os.environ.get("CONNHUNT_DATA") or os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local/share")
    return Path(base) / ("" if os.environ.get("CONNHUNT_DATA") else "connhunt")


def open_database(path: Path, what: str = "--db") -> Store:
    """The hunt's DuckDB file, opened (and so locked against another hunt), or a one-line InputError."""
    if path.is_dir():
        raise InputError(f"{what} {path}: is a directory, expected a DuckDB file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot create its folder: {exc.strerror or exc}") from None
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise InputError(f"{what} {path}: not readable and writable")
    try:
        return Store(path)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            raise InputError(f"{what} {path}: in use by another process (another hunt holds it?)") from None
        raise InputError(f"{what} {path}: cannot open: {' '.join(text.split())[:200]}") from None
    except duckdb.Error as exc:
        raise InputError(f"{what} {path}: not a DuckDB database: {' '.join(str(exc).split())[:200]}") from None
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot open: {exc.strerror or exc}") from None


def check_data_dir(directory: Path) -> None:
    """Before a hunt starts without --db: its database will go here, so the folder must take a file."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".connhunt-check-"):
            pass
    except OSError as exc:
        raise InputError(f"hunt database folder {directory}: not writable ({exc.strerror or exc}); "
                         f"choose a file with --db") from None


def targeted(clients: Iterable[api.ClientInfo], label: str | None, os_name: str | None) -> list[api.ClientInfo]:
    """Clients the hunt's label and OS match."""
    return [c for c in clients
            if (not label or label in c.labels) and (not os_name or c.os.lower() == os_name.lower())]


def online(clients: Iterable[api.ClientInfo], now: float | None = None,
           within: float = ONLINE_SECONDS) -> list[api.ClientInfo]:
    now = time.time() if now is None else now
    return [c for c in clients if c.last_seen is not None and now - c.last_seen <= within]


def run(client: api.VelociraptorClient, plan: HuntPlan, db: Path | None = None, *,
        on_progress: Progress | None = None, on_started: Callable[[str, pull.PullProgress], None] | None = None
        ) -> HuntResult:
    """Launch a hunt and pull it. Nothing is launched until the database is open and the targets exist.

    Raises InputError (bad --db, a label or OS that matches no client), VelociraptorError (the server), and
    CollectionError on Ctrl-C; errors that a resume can repair say how to resume.
    """
    if db is not None and db.is_dir():  # say so before asking the server anything
        raise InputError(f"--db {db}: is a directory, expected a DuckDB file")
    clients = api.list_clients(client)
    matching = targeted(clients, plan.label, plan.os_name)
    if not matching:
        what = " and ".join(x for x in (f"label {plan.label!r}" if plan.label else "",
                                        f"OS {plan.os_name!r}" if plan.os_name else "") if x)
        raise InputError(f"no Velociraptor client of {client.endpoint} matches {what or 'the hunt'}: "
                         f"nothing to hunt (see `connhunt clients`)")
    store = open_database(db) if db else None
    try:
        if store is None:
            check_data_dir(data_dir())
        reachable = online(matching)
        artifacts = [plan.artifact] + ([WINDOW_ARTIFACT] if plan.watch else [])
        window_params = ({WINDOW_ARTIFACT: {"Duration": plan.watch, "Interval": plan.watch_interval}}
                         if plan.watch else {})
        hunt_id = api.create_hunt(client, artifacts, label=plan.label, os=plan.os_name, expires=plan.expires,
                                  parameters=plan.parameters, artifact_parameters=window_params)
        progress = pull.PullProgress(hunt_id=hunt_id, targeted=len(matching), online=len(reachable))
        if store is None:
            store = open_database(data_dir() / f"hunt-{hunt_id}.duckdb", "hunt database")
        # The hunt would reach these at their next hunt check (tens of seconds); scheduling now makes it immediate.
        for info in reachable:
            api.add_to_hunt(client, hunt_id, info.client_id)
        if on_started:
            on_started(hunt_id, progress)
        hostnames = {c.client_id: c.hostname for c in clients}
        # Wait for the clients online now; the others join while the hunt lasts, and a resume pulls them then.
        _pull(client, store, hunt_id, plan, len(reachable) or None, hostnames, progress, on_progress)
        offline = len(matching) - len(reachable)
        if offline:
            progress.notes.append(f"hunt {hunt_id}: {offline} targeted client(s) offline; the hunt reaches them "
                                  f"when they connect (until it expires): `connhunt hunt --resume {hunt_id}` "
                                  f"pulls them then")
    except BaseException:
        if store is not None:
            store.close()
        raise
    return HuntResult(store, hunt_id, progress)


def resume(client: api.VelociraptorClient, hunt_id: str, db: Path | None = None, *, wait: float = 300.0,
           artifact: str | None = None, monitor_window: int | None = None,
           on_progress: Progress | None = None) -> HuntResult:
    """Pull the rest of an earlier hunt into its database; every row lands exactly once.

    Works when the server has forgotten the hunt's record but still serves its flows (see api.hunt_info).
    """
    api.hunt_info(client, hunt_id)  # unknown hunt: fail before creating a database for it
    store = open_database(db or data_dir() / f"hunt-{hunt_id}.duckdb", "--db" if db else "hunt database")
    try:
        hostnames = {c.client_id: c.hostname for c in api.list_clients(client)}
        plan = HuntPlan(artifact=artifact or api.ARTIFACT, wait=wait, monitor_window=monitor_window)
        progress = pull.PullProgress(hunt_id=hunt_id)
        _pull(client, store, hunt_id, plan, None, hostnames, progress, on_progress, fallback_artifact=artifact)
    except BaseException:
        store.close()
        raise
    return HuntResult(store, hunt_id, progress)


def _pull(client: api.VelociraptorClient, store: Store, hunt_id: str, plan: HuntPlan, expect: int | None,
          hostnames: dict[str, str], progress: pull.PullProgress, on_progress: Progress | None,
          fallback_artifact: str | None = None) -> None:
    resume_hint = f"rows pulled so far are kept, resume with: connhunt hunt --resume {hunt_id}"
    try:
        pull.pull_hunt(client, store, hunt_id, fallback_artifact or plan.artifact, expect=expect, wait=plan.wait,
                       hostnames=hostnames, on_progress=on_progress, progress=progress)
        if plan.monitor_window:
            pull_monitor(client, store, hunt_id, plan.monitor_window, hostnames, progress)
    except api.HuntUnreachable:
        raise  # expired, or no client reached: a resume would find nothing more
    except api.VelociraptorError as exc:
        raise api.VelociraptorError(f"{exc}; {resume_hint}") from None
    except KeyboardInterrupt:
        raise CollectionError(f"hunt {hunt_id}: interrupted; {resume_hint}") from None


def pull_monitor(client: api.VelociraptorClient, store: Store, hunt_id: str, window: int,
                 hostnames: dict[str, str], progress: pull.PullProgress) -> None:
    """Store the standing monitor's connections of the last ``window`` seconds of every hunted client."""
    # The hunted clients are the ones the ledger holds flows of (on a resume too, where progress starts empty).
    client_ids = {c for c, f in pull.pulled(store, hunt_id) if f != monitor.LEDGER_FLOW}
    rows, rejected, skipped = monitor.pull_events(client, store, hunt_id, client_ids, window, hostnames=hostnames)
    progress.notes.append(f"hunt {hunt_id}: {rows} connection(s) from {monitor.ARTIFACT} events of the last "
                          f"{window}s" + (f" ({rejected} rejected)" if rejected else "")
                          + (f"; {skipped} client(s) pulled by an earlier run" if skipped else ""))


def summary(result: HuntResult) -> str:
    """One line on where the hunt stands, for the report's notes."""
    p = result.progress
    reach = f"{p.targeted} client(s) targeted, {p.online} online, " if p.targeted is not None else ""
    return (f"hunt {result.hunt_id}: {reach}{p.scheduled} scheduled, {p.finished} finished, {p.errors} with "
            f"errors, {p.rows} rows pulled; rows in {result.store.path}")


def label_findings(client: api.VelociraptorClient, store: Store, hosts: set[str],
                   label: str = FINDING_LABEL) -> list[str]:
    """Label the Velociraptor clients behind these hosts (store host -> host_id, the client id)."""
    if not hosts:
        return []
    rows = store.query("SELECT DISTINCT host, host_id FROM connections WHERE host_id LIKE 'C.%' "
                       "UNION SELECT DISTINCT host, host_id FROM listeners WHERE host_id LIKE 'C.%'")
    client_ids = sorted({r["host_id"] for r in rows if r["host"] in hosts})
    for client_id in client_ids:
        api.label_client(client, client_id, label)
    return client_ids


def parse_parameters(items: Iterable[str]) -> dict[str, str]:
    """NAME=VALUE pairs (artifact parameters; they reach VQL as env values, never as query text)."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not name.strip().replace("_", "").isalnum():
            raise InputError(f"--param {item!r}: expected NAME=VALUE with a parameter name of letters, digits, _")
        out[name.strip()] = value
    return out
