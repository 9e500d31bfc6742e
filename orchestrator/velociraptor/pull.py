"""Pull a hunt's results into the local DuckDB store as each client's flow finishes, resumably.

Rows go through the one Velociraptor mapping (sources/velociraptor_rows), as the offline zip reader's do, so a
pulled row and the same row read from a hunt export store identically. Each flow is written in one transaction
together with its ledger row (hunt_id, client_id, flow_id, pulled), so a pull interrupted anywhere (server killed,
network lost, Ctrl-C) leaves either all of a flow's rows or none, and a resumed pull skips exactly the flows the
ledger holds: every row lands exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from orchestrator.pipeline import IngestStats, store_records
from orchestrator.schema import normalise_health
from orchestrator.sources.base import Health
from orchestrator.sources.velociraptor_rows import Endpoint, map_source
from orchestrator.store import Store
from orchestrator.velociraptor import api

LEDGER = "velociraptor_pulls"
_LEDGER_DDL = f"""CREATE TABLE IF NOT EXISTS {LEDGER} (
    hunt_id VARCHAR NOT NULL,
    client_id VARCHAR NOT NULL,
    flow_id VARCHAR NOT NULL,
    state VARCHAR NOT NULL,
    rows BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    pulled TIMESTAMP NOT NULL,
    PRIMARY KEY (hunt_id, client_id, flow_id))"""
SOURCE = "velociraptor"


@dataclass
class PullProgress:
    """Where a pull stands; handed to the progress callback after every batch and every flow."""

    hunt_id: str
    targeted: int | None = None  # clients the hunt's label/OS match (None: not known, e.g. on a resume)
    online: int | None = None  # of those, seen by the server within the last minute when the hunt started
    scheduled: int = 0
    finished: int = 0
    errors: int = 0
    pulled_flows: int = 0
    rows: int = 0
    rejected: int = 0
    already: int = 0  # flows a previous (interrupted) pull had stored
    notes: list[str] = field(default_factory=list)


Progress = Callable[[PullProgress], None]


def ensure_ledger(store: Store) -> None:
    store.con.execute(_LEDGER_DDL)


def pulled(store: Store, hunt_id: str) -> set[tuple[str, str]]:
    """(client_id, flow_id) of every flow of this hunt already stored."""
    ensure_ledger(store)
    rows = store.con.execute(f"SELECT client_id, flow_id FROM {LEDGER} WHERE hunt_id = ?", [hunt_id]).fetchall()
    return {(str(c), str(f)) for c, f in rows}


Batches = Iterable[tuple[str, Iterable[list[dict[str, Any]]]]]  # (artifact source, its result batches)


def pull_flow(client: api.VelociraptorClient, store: Store, hunt_id: str, flow: api.HuntFlow,
              artifacts: str | Sequence[str], hostname: str = "", progress: PullProgress | None = None,
              on_progress: Progress | None = None) -> tuple[int, int]:
    """Store one finished flow's rows (of these artifacts' sources) and its ledger entry in one transaction.

    Returns (rows, rejected).
    """
    names = [artifacts] if isinstance(artifacts, str) else list(artifacts)
    sources = [(source, api.flow_results(client, flow.client_id, flow.flow_id, source))
               for name in names for source in api.sources_of([flow], name)]
    notes = []
    if flow.state == "ERROR":
        notes.append(("collection_error", f"hunt {hunt_id} flow {flow.flow_id}: {flow.status or 'collection failed'}"))
    return store_ledgered(store, hunt_id, flow.client_id, flow.flow_id, flow.state, sources, hostname, notes,
                          progress, on_progress)


def store_ledgered(store: Store, hunt_id: str, client_id: str, flow_id: str, state: str, sources: Batches,
                   hostname: str = "", notes: Iterable[tuple[str, str]] = (), progress: PullProgress | None = None,
                   on_progress: Progress | None = None) -> tuple[int, int]:
    """Map and store the rows of each artifact source, and one ledger row, in one transaction.

    Shared by flow pulls and monitor-event pulls (monitor.py) so both get the same exactly-once guarantee: a
    caller that finds (hunt_id, client_id, flow_id) in ``pulled()`` skips it. ``notes`` are (check, message)
    health notes stored with the rows. Returns (rows, rejected).
    """
    ensure_ledger(store)
    con = store.con
    stats = IngestStats()
    rejected: list[str] = []
    health = Health(SOURCE)
    # The endpoint cannot know its client id; the server does, and it is the fleet's host key.
    endpoint = Endpoint(hostname or client_id, client_id, client_id=client_id, health=health)

    def numbered(source: str, batches: Iterable[list[dict[str, Any]]]) -> Iterator[tuple[str, Any]]:
        number = 0
        for batch in batches:
            for row in batch:
                number += 1
                yield f"hunt {hunt_id} flow {flow_id} {source} row {number}", row
            if progress is not None:
                progress.rows += len(batch)
                if on_progress:
                    on_progress(progress)

    con.execute("BEGIN TRANSACTION")
    try:
        for source, batches in sources:
            store_records(store, map_source(source, numbered(source, batches), endpoint,
                                            lambda where, why: rejected.append(f"{where}: {why}")), stats)
        total = sum(n for kind, n in stats.rows.items() if kind != "health")
        host = hostname or client_id
        extra = [{"host": host, "check": check, "count": 1, "message": message} for check, message in notes]
        if rejected:
            extra.insert(0, {"host": host, "check": "rejected_record", "count": len(rejected),
                             "message": rejected[0]})
        store.insert("health", [*(row for _, row in health.records()),
                                *(normalise_health(n, default_source=SOURCE) for n in extra)])
        con.execute(f"INSERT INTO {LEDGER} VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [hunt_id, client_id, flow_id, state, total, len(rejected),
                     datetime.now(timezone.utc).replace(tzinfo=None)])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        if progress is not None:
            progress.rows -= sum(stats.rows.values()) + len(rejected)
        raise
    return total, len(rejected)


def pull_hunt(client: api.VelociraptorClient, store: Store, hunt_id: str, artifact: str | None = None, *,
              expect: int | None = None, wait: float = 600.0, poll: float = 2.0,
              hostnames: dict[str, str] | None = None, on_progress: Progress | None = None,
              progress: PullProgress | None = None, sleep: Callable[[float], None] = time.sleep) -> PullProgress:
    """Pull every finished flow of the hunt not yet in the ledger, until all are done (bounded by ``wait``).

    Every artifact of the hunt is pulled (``artifact`` only when the server no longer says which it ran). ``expect``
    is how many clients the hunt should reach; without it the pull ends as soon as every flow the server has
    scheduled so far is done. An unknown hunt raises; an expired one, or one that reached no client within
    ``wait``, raises HuntUnreachable (resuming cannot help).
    """
    info = api.hunt_info(client, hunt_id)
    artifacts = info.artifacts or ((artifact,) if artifact else (api.ARTIFACT,))
    hostnames = dict(hostnames or {})
    progress = progress or PullProgress(hunt_id=hunt_id)
    done = pulled(store, hunt_id)
    progress.already = len(done)
    deadline = time.monotonic() + wait
    while True:
        flows = api.hunt_flows(client, hunt_id)
        progress.scheduled = len(flows)
        progress.finished = sum(f.state == "FINISHED" for f in flows)
        progress.errors = sum(f.state == "ERROR" for f in flows)
        for flow in flows:
            if not api.flow_done(flow) or (flow.client_id, flow.flow_id) in done:
                continue
            pull_flow(client, store, hunt_id, flow, artifacts, hostnames.get(flow.client_id, ""), progress,
                      on_progress)
            done.add((flow.client_id, flow.flow_id))
            progress.pulled_flows += 1
        if on_progress:
            on_progress(progress)
        all_done = bool(flows) and all(api.flow_done(f) for f in flows)
        if all_done and (expect is None or len(flows) >= expect):
            return progress
        if info.expired or time.monotonic() >= deadline:
            break
        sleep(poll)
        if not info.from_flows:
            info = api.hunt_info(client, hunt_id)
    if not flows:
        why = "expired before reaching any client" if info.expired else f"reached no client within {wait:.0f}s"
        raise api.HuntUnreachable(f"Velociraptor API {client.endpoint} (hunt {hunt_id}): hunt {why}")
    waiting = sum(not api.flow_done(f) for f in flows)
    missing = max(0, (expect or 0) - len(flows))
    progress.notes.append(f"hunt {hunt_id}: stopped waiting with {waiting} collection(s) still running and "
                          f"{missing} expected client(s) not scheduled; `connhunt hunt --resume {hunt_id}` "
                          f"pulls the rest later")
    return progress
