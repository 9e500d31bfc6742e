"""Whole expected rows for the EDR/SIEM reader tests: every schema column, the unknown ones None, then the facts."""

from __future__ import annotations

from typing import Any

from orchestrator.schema import CONNECTION_COLUMNS, DNS_COLUMNS, LISTENER_COLUMNS
from tests.sources.helpers import DATA

EDR = DATA / "edr"


def _blank(columns: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return {name: None for name, _ in columns}


def _defaults(row: dict[str, Any], **from_column: str) -> dict[str, Any]:
    """Columns the readers derive from another when the input has no value of their own (host_id from host...)."""
    for column, source in from_column.items():
        if row[column] is None:
            row[column] = row[source]
    return row


def connection(**facts: Any) -> dict[str, Any]:
    """A connection row as a reader makes it: one observation, seen by an event, unless the facts say otherwise."""
    row = {**_blank(CONNECTION_COLUMNS), "observations": 1, "seen_by": "event", "attributed": True,
           "attribution": "pid", "family": "ipv4"}
    row.update(facts)
    return _defaults(row, host_id="host", last_seen="first_seen", collected_at="first_seen")


def listener(**facts: Any) -> dict[str, Any]:
    row = {**_blank(LISTENER_COLUMNS), "observations": 1, "attributed": True, "family": "ipv4"}
    row.update(facts)
    return _defaults(row, host_id="host", last_seen="first_seen", collected_at="first_seen")


def dns(**facts: Any) -> dict[str, Any]:
    row = {**_blank(DNS_COLUMNS), "answers": []}
    row.update(facts)
    return _defaults(row, host_id="host", collected_at="timestamp")
