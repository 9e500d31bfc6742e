"""Client event monitoring with Custom.Connhunt.Monitor: install it on clients, and pull its events into a hunt.

A hunt's netstat snapshot sees each connection once, so beacon scoring (which needs the start time of every
reconnect) has nothing to work with. The monitor artifact samples the socket table every Interval seconds on the
endpoint and emits an "opened" row for each new connection; pulled over a window, those rows give one connection
row per reconnect, with first_seen = when it opened.

Installing touches only connhunt's entry of the server's client event table: add_client_monitoring() and
rm_client_monitoring() edit one artifact of one group on the server side, so other artifacts' entries (their
parameters, their batch settings) stay exactly as their owners set them. Only ``max_batch_wait`` (how long a
client holds event rows before uploading them; the server's default is about two minutes) cannot be given to
add_client_monitoring(); with --batch-wait connhunt reads the table, changes its own spec and nothing else, and
writes it back (get/set_client_monitoring), as it does to drop a label group its removal left empty. Velociraptor
checks the permissions of every artifact in the table on any change (a server limitation), so a user without,
say, EXECVE cannot change the table while an artifact needing it is installed; the error says so.

Pulled events are stored through pull.store_ledgered under a ledger entry per (hunt, client), so a resumed hunt
does not store them twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from orchestrator.store import Store
from orchestrator.velociraptor import api, pull

ARTIFACT = "Custom.Connhunt.Monitor"
DEFAULT_INTERVAL = 10
# Ledger flow id of a hunt's monitor pull: one per (hunt, client), whatever the window.
LEDGER_FLOW = f"monitor:{ARTIFACT}"


def _get_table(client: api.VelociraptorClient) -> dict[str, Any]:
    rows = client.query("SELECT get_client_monitoring() AS table FROM scope()", context="client monitoring table")
    table = rows[0].get("table") if rows else None
    if not isinstance(table, dict):
        raise api.VelociraptorError(f"Velociraptor API {client.endpoint}: could not read the client monitoring "
                                    f"table")
    return table


def _group(table: dict[str, Any], label: str | None, create: bool) -> dict[str, Any] | None:
    """The artifact collector args of the 'all clients' group, or of one label group."""
    if not label:
        return table.setdefault("artifacts", {})
    for group in table.setdefault("label_events", []):
        if group.get("label") == label:
            return group.setdefault("artifacts", {})
    if not create:
        return None
    group = {"label": label, "artifacts": {}}
    table["label_events"].append(group)
    return group["artifacts"]


def _without(group: dict[str, Any], artifact: str) -> bool:
    """Remove the artifact from one group; True when it was there."""
    before = list(group.get("artifacts") or ())
    group["artifacts"] = [a for a in before if a != artifact]
    specs = list(group.get("specs") or ())
    group["specs"] = [s for s in specs if s.get("artifact") != artifact]
    return len(group["artifacts"]) != len(before) or len(group["specs"]) != len(specs)


def _set_table(client: api.VelociraptorClient, table: dict[str, Any]) -> dict[str, Any]:
    # The server recompiles every group from artifacts + specs; stale compiled queries must not be sent back.
    for group in [table.get("artifacts") or {}, *[g.get("artifacts") or {} for g in table.get("label_events", [])]]:
        group.pop("compiled_collector_args", None)
    table.pop("version", None)
    rows = client.query("SELECT set_client_monitoring(value=parse_json(data=Table)) AS table FROM scope()",
                        {"Table": json.dumps(table)}, context="client monitoring table")
    result = rows[0].get("table") if rows else None
    if not isinstance(result, dict):
        raise api.VelociraptorError(f"Velociraptor API {client.endpoint}: the server did not accept the client "
                                    f"monitoring table")
    return result


def _spec(table: dict[str, Any], label: str | None) -> list[dict[str, Any]] | None:
    """connhunt's specs in one group of the table, or None when the group (or the artifact) is not there."""
    group = _group(table, label, create=False)
    if group is None or ARTIFACT not in (group.get("artifacts") or ()):
        return None
    return [s for s in group.get("specs") or () if s.get("artifact") == ARTIFACT]


def enable(client: api.VelociraptorClient, *, label: str | None = None, interval: int = DEFAULT_INTERVAL,
           batch_wait: int | None = None, parameters: Mapping[str, Any] | None = None) -> bool:
    """Install (or reinstall with these parameters) the monitor for all clients or one label group.

    Idempotent: the artifact appears once in the group whatever was there before. ``batch_wait`` is how many
    seconds a client may hold event rows before uploading them (None: the server's default). Returns True when
    the group's entry changed.
    """
    if interval < 1:
        raise ValueError("the monitor interval must be at least 1 second")
    env = {"Interval": interval, **(parameters or {})}
    spec: dict[str, Any] = {"artifact": ARTIFACT, "parameters": {
        "env": [{"key": k, "value": api.artifact_param(v)} for k, v in env.items()]}}
    if batch_wait:
        spec["max_batch_wait"] = int(batch_wait)
    table = _get_table(client)
    if _spec(table, label) == [spec]:
        return False
    with api.hint_unknown_artifact(), _permission_hint():
        if not batch_wait:
            rows = client.query("SELECT add_client_monitoring(artifact=ArtifactName, label=Label, "
                                "parameters=parse_json(data=Params)) AS table FROM scope()",
                                {"ArtifactName": ARTIFACT, "Label": label or "",
                                 "Params": {k: api.artifact_param(v) for k, v in env.items()}},
                                context="client monitoring table")
            if not rows or not isinstance(rows[0].get("table"), dict):
                raise api.VelociraptorError(f"Velociraptor API {client.endpoint}: the server did not add {ARTIFACT} "
                                            f"to the client monitoring table (is the artifact pushed?)")
            return True
        group = _group(table, label, create=True)
        assert group is not None
        _without(group, ARTIFACT)
        group.setdefault("artifacts", []).append(ARTIFACT)
        group.setdefault("specs", []).append(spec)
        _set_table(client, table)
    return True


@contextmanager
def _permission_hint() -> Iterator[None]:
    try:
        yield
    except api.VelociraptorError as exc:
        if "permission" in str(exc).lower() or "ClientEventTable" in str(exc):
            raise api.VelociraptorError(f"{exc} (Velociraptor checks every artifact of the client event table on "
                                        f"any change: this user needs the permissions of all of them)") from None
        raise


def disable(client: api.VelociraptorClient, *, label: str | None = None) -> bool:
    """Remove the monitor from all clients or one label group, and the label group if that leaves it empty.

    Returns False when it was not installed there.
    """
    table = _get_table(client)
    if _spec(table, label) is None:
        return False  # rm_client_monitoring() would create a missing label group: do not call it
    with _permission_hint():
        client.query("SELECT rm_client_monitoring(artifact=ArtifactName, label=Label) AS table FROM scope()",
                     {"ArtifactName": ARTIFACT, "Label": label or ""}, context="client monitoring table")
        if label:
            table = _get_table(client)
            groups = table.get("label_events") or []
            kept = [g for g in groups if g.get("label") != label
                    or (g.get("artifacts") or {}).get("artifacts") or (g.get("artifacts") or {}).get("specs")]
            if len(kept) != len(groups):
                table["label_events"] = kept
                _set_table(client, table)
    return True


def installed(client: api.VelociraptorClient) -> list[str]:
    """Where the monitor is installed: 'all' and/or 'label:<name>'."""
    table = _get_table(client)
    where = ["all"] if ARTIFACT in ((table.get("artifacts") or {}).get("artifacts") or ()) else []
    where += [f"label:{g.get('label')}" for g in table.get("label_events") or ()
              if ARTIFACT in ((g.get("artifacts") or {}).get("artifacts") or ())]
    return where


def events(client: api.VelociraptorClient, client_id: str, start: float, end: float) -> Iterator[list[dict[str, Any]]]:
    """Batches of the monitor's event rows one client uploaded between two epoch times (server receive time)."""
    return client.stream("SELECT * FROM source(client_id=ClientId, artifact=ArtifactName, start_time=Start, "
                         "end_time=End)",
                         {"ClientId": client_id, "ArtifactName": ARTIFACT, "Start": int(start), "End": int(end) + 1},
                         timeout=max(client.timeout, api.RESULTS_TIMEOUT), context=f"monitor events of {client_id}")


def pull_events(client: api.VelociraptorClient, store: Store, hunt_id: str, client_ids: Iterable[str],
                window: float, *, hostnames: Mapping[str, str] | None = None,
                now: float | None = None) -> tuple[int, int, int]:
    """Store each client's monitor connections of the last ``window`` seconds into the hunt's store, ledgered.

    Clients already in the ledger for this hunt are skipped, so a resumed hunt never doubles them. Returns
    (rows, rejected, skipped): rows and rejected over the clients pulled now, skipped clients pulled before.
    """
    end = time.time() if now is None else now
    start = end - window
    done = pull.pulled(store, hunt_id)
    total = rejected = skipped = 0
    for client_id in sorted(set(client_ids)):
        if (client_id, LEDGER_FLOW) in done:
            skipped += 1
            continue
        # Whole window in memory: opened and closed rows must meet to merge (the one mapping merges them, as for
        # a zip). Monitor rows are few (one per connection change), so a window per client is small.
        raw = [row for batch in events(client, client_id, start, end) for row in batch]
        state = "FINISHED" if raw else "EMPTY"
        notes = [] if raw else [("monitor_empty", f"hunt {hunt_id}: no {ARTIFACT} events from {client_id} in the "
                                                  f"last {int(window)}s (run `connhunt monitor enable`)")]
        sources = [(ARTIFACT, [raw])] if raw else []
        n, bad = pull.store_ledgered(store, hunt_id, client_id, LEDGER_FLOW, state, sources,
                                     (hostnames or {}).get(client_id, ""), notes)
        total += n
        rejected += bad
    return total, rejected, skipped
