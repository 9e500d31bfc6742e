"""The embedded DuckDB store: one table per kind of event, in memory for triage or a file for fleet hunts.

Detectors query it with SQL so fleet-scale stacking happens in columns, not in Python loops over rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from orchestrator.schema import TABLE_COLUMNS

_TABLES = TABLE_COLUMNS
MEMORY_LIMIT = "2500MB"
# Rows go in by the batch, which keeps memory flat on large inputs.
BATCH = 20000


def _naive_utc(value: Any) -> Any:
    """Times are stored as naive UTC TIMESTAMPs (TIMESTAMPTZ would make DuckDB need pytz to read them back)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


class Store:
    """A DuckDB database holding the schema's tables. ``path=None`` keeps it in memory."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = str(path) if path else ":memory:"
        self.con = duckdb.connect(self.path)
        self.con.execute("SET TimeZone = 'UTC'")
        # DuckDB's own progress bar would write to the terminal (stdout) in the middle of a report.
        self.con.execute("SET enable_progress_bar = false")
        # Fleet-scale stacking spills to disk past this instead of growing with the fleet (CONNHUNT_MEMORY_LIMIT).
        self.con.execute("SET memory_limit = ?", [os.environ.get("CONNHUNT_MEMORY_LIMIT", MEMORY_LIMIT)])
        self.con.execute("SET preserve_insertion_order = false")
        row = self.con.execute("SELECT current_database()").fetchone()
        self.catalog = str(row[0]) if row else "memory"
        for table, columns in _TABLES.items():
            cols = ", ".join(f'"{name}" {kind}' for name, kind in columns)
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")
            # a hunt file written by an older connhunt lacks the newer columns: add them (NULL) rather than fail
            have = {r[0] for r in self.con.execute(f"DESCRIBE {table}").fetchall()}
            for name, kind in columns:
                if name not in have:
                    self.con.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {kind}')
        # Parquet files already in the schema's exact shape are read where they lie, not copied (see attach_parquet)
        self.external: dict[str, list[str]] = {}

    def table(self, table: str) -> str:
        """The stored rows of ``table`` alone, whatever views stand in front of it."""
        return f'"{self.catalog}".main.{table}'

    def attach_parquet(self, table: str, path: Path) -> None:
        """Read ``path`` as part of ``table`` from now on, without copying it: a TEMP view of the same name, the
        stored rows plus the files, shadows the table for every query (inserts go to the table itself)."""
        self.external.setdefault(table, []).append(str(path))
        files = ", ".join("'" + f.replace("'", "''") + "'" for f in self.external[table])
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM {self.table(table)} "
                         f"UNION ALL BY NAME SELECT * FROM read_parquet([{files}])")

    def insert(self, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert schema rows into ``table`` (connections, dns or health); returns how many went in."""
        total = 0
        batch: list[Mapping[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                total += self._insert_batch(table, batch)
                batch = []
        if batch:
            total += self._insert_batch(table, batch)
        return total

    def _insert_batch(self, table: str, batch: list[Mapping[str, Any]]) -> int:
        # One statement per batch, one list parameter per column, zipped back into rows by unnest: about a
        # hundred times faster than executemany, which runs one prepared insert per row.
        columns = _TABLES[table]
        values = [[_naive_utc(row.get(name)) for row in batch] for name, _ in columns]
        select = ", ".join(f'unnest(?::{kind}[]) AS "{name}"' for name, kind in columns)
        # by name: a hunt file from an older connhunt has its newer columns last
        self.con.execute(f"INSERT INTO {self.table(table)} BY NAME SELECT {select}", values)
        return len(batch)

    def add_connections(self, rows: Iterable[Mapping[str, Any]]) -> int:
        return self.insert("connections", rows)

    def add_listeners(self, rows: Iterable[Mapping[str, Any]]) -> int:
        return self.insert("listeners", rows)

    def add_dns(self, rows: Iterable[Mapping[str, Any]]) -> int:
        return self.insert("dns", rows)

    def add_health(self, rows: Iterable[Mapping[str, Any]]) -> int:
        return self.insert("health", rows)

    def count(self, table: str) -> int:
        if table not in _TABLES:
            raise ValueError(f"no such table: {table}")
        row = self.con.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0

    def query(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a query as dicts (for the small result sets detectors work on)."""
        cursor = self.con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
