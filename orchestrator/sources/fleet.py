"""Reads osquery results collected through Fleet: ``fleetctl query`` JSON lines and the live-query REST API's JSON.

``fleetctl query --query ...`` prints one line per host, ``{"host": <hostname>, "rows": [...], "error": ...}``
(fleetdm/fleet, cmd/fleetctl query output ``resultOutput``; ``error`` only when the host failed). The REST API
answers ``GET /api/v1/fleet/queries/run`` with ``{"summary": {"targeted_host_count", "responded_host_count"},
"live_query_results": [{"query_id", "results": [{"host_id", "rows", "error"}]}]}``, ``POST
/api/v1/fleet/queries/{id}/run`` with ``{"query_id", "targeted_host_count", "responded_host_count", "results":
[...]}``, and a query on one host with ``{"host_id", "rows", "query", "status", "error"}``. Rows are osquery rows
(every value a string), read as osquery.py reads them; a host that errored or did not answer becomes a
``collection_error`` health row naming it, so the report says whose sockets are missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from orchestrator.schema import SchemaError
from orchestrator.sources.base import Health, OnSkip, Record
from orchestrator.sources.export import read_export
from orchestrator.sources.osquery import result_row

SOURCE = "fleet"
NAME = "fleet"  # --input-format
# Fleet adds these to each live-query row; they name the host, they are not the query's columns.
_HOST_COLUMNS = ("host_hostname", "host_display_name")


def sniff(first: Any) -> bool:
    if not isinstance(first, Mapping):
        return False
    if "host" in first and "rows" in first:  # fleetctl query
        return True
    return "live_query_results" in first or ("results" in first and "targeted_host_count" in first) or (
        "host_id" in first and "rows" in first)


def unwrap(value: Any) -> list[Any] | None:
    """One item per host result: a REST response holds many; a fleetctl line is one already."""
    if not isinstance(value, Mapping):
        return None
    if "live_query_results" in value:
        campaigns = value["live_query_results"]
        if not isinstance(campaigns, list):
            raise SchemaError("'live_query_results' must be a list")
        items: list[Any] = [_summary(value.get("summary"))]
        for campaign in campaigns:
            if not isinstance(campaign, Mapping) or not isinstance(campaign.get("results"), list):
                raise SchemaError("each live_query_results item must hold a 'results' list")
            if campaign.get("error"):
                items.append({"campaign_error": campaign["error"], "query_id": campaign.get("query_id")})
            items.extend({**r, "query_id": campaign.get("query_id")} if isinstance(r, Mapping) else r
                         for r in campaign["results"])
        return items
    if "results" in value and "targeted_host_count" in value:
        if not isinstance(value["results"], list):
            raise SchemaError("'results' must be a list")
        return [_summary(value), *value["results"]]
    return None


def _summary(summary: Any) -> dict[str, Any]:
    return {"summary": summary if isinstance(summary, Mapping) else {}}


def read_fleet(path: Path, *, skip_bad: bool = False, on_skip: OnSkip = None) -> Iterator[Record]:
    """Yield (kind, schema row) for each socket or DNS row of a Fleet live-query result, and per-host errors."""
    try:
        written = path.stat().st_mtime  # neither form carries a time; the file was saved when the query ran
    except OSError:
        written = None

    def convert(item: Any, health: Health) -> Iterable[Record]:
        return _convert(item, health, written)

    return read_export(path, source=SOURCE, unwrap=unwrap, convert=convert, skip_bad=skip_bad, on_skip=on_skip)


def _convert(item: Any, health: Health, written: float | None) -> Iterable[Record]:
    if not isinstance(item, Mapping):
        raise SchemaError(f"expected a host result object, got {type(item).__name__}")
    if "summary" in item:
        summary = item["summary"]
        targeted, responded = summary.get("targeted_host_count"), summary.get("responded_host_count")
        if isinstance(targeted, int) and isinstance(responded, int) and responded < targeted:
            health.note("", "collection_error", f"{targeted - responded} of {targeted} targeted hosts did not "
                                                "respond to the live query", targeted - responded)
        return []
    if "campaign_error" in item:
        health.note("", "collection_error", f"live query {item.get('query_id')} failed: {item['campaign_error']}")
        return []
    rows = item.get("rows")
    if rows is not None and not isinstance(rows, list):
        raise SchemaError("'rows' must be a list")
    host = _host(item, rows or [])
    error = item.get("error")
    if error:
        health.note(host, "collection_error", f"{host}: the live query failed: {error}")
    query = f"fleet query {item['query_id']}" if item.get("query_id") is not None else "fleet live query"
    records = []
    for row in rows or []:
        if not isinstance(row, Mapping):
            raise SchemaError(f"a row must be a JSON object, got {type(row).__name__}")
        columns = {k: v for k, v in row.items() if k not in _HOST_COLUMNS}
        record = result_row(columns, host, written, {}, query, health, SOURCE)
        if record is not None:
            records.append(record)
    return records


def _host(item: Mapping[str, Any], rows: list[Any]) -> str:
    """fleetctl names the host; the REST API only gives its Fleet id, unless the rows carry Fleet's host columns."""
    if item.get("host"):
        host = item["host"]
        if isinstance(host, Mapping):  # some Fleet versions nest the host object
            host = host.get("hostname") or host.get("display_name") or host.get("id")
        return str(host)
    for row in rows:
        if isinstance(row, Mapping):
            for column in _HOST_COLUMNS:
                if row.get(column):
                    return str(row[column])
    if item.get("host_id") is not None:
        return f"fleet-host-{item['host_id']}"
    raise SchemaError("the result names no host (no 'host' or 'host_id')")
