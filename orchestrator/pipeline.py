"""The hunt pipeline: records -> store -> detectors -> scoring -> correlation -> one immutable HuntReport.

The CLI and the fleet hunt both call these functions; nothing here prints or parses arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from orchestrator.baseline import attach as attach_baseline
from orchestrator.config import Config
from orchestrator.correlate import correlate
from orchestrator.detectors import Context
from orchestrator.errors import InputError
from orchestrator.model import HuntReport
from orchestrator.schema import KINDS, SchemaError, normalise, normalise_health
from orchestrator.scoring import Progress, risk_counts, run_detectors, score
from orchestrator.sources import bulk, read_any, sniff
from orchestrator.sources.windows_events import drop_wfp_twins
from orchestrator.store import Store

Record = tuple[str, dict[str, Any]]


@dataclass
class IngestStats:
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    skipped: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def store_records(store: Store, records: Iterable[Record], stats: IngestStats) -> None:
    """Route (kind, row) records to their tables in batches, counting them."""
    buffers: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for kind, row in records:
        buffers[kind].append(row)
        if len(buffers[kind]) >= 5000:
            stats.rows[kind] += store.insert(KINDS[kind][0], buffers[kind])
            buffers[kind] = []
    for kind, rows in buffers.items():
        if rows:
            stats.rows[kind] += store.insert(KINDS[kind][0], rows)


def normalise_raw(raw: Iterable[dict[str, Any]], host: str | None = None) -> Iterable[Record]:
    """agent_local's in-memory records (with ``kind``) as schema rows; used by triage and collect."""
    for record in raw:
        try:
            yield normalise(record.get("kind", "connection"), record, default_host=host, default_source="agent_local")
        except SchemaError:
            # A record agent_local produced but the schema rejects is a bug worth counting, not a crash.
            yield "health", normalise_health({"check": "rejected_record", "count": 1,
                                              "message": f"record rejected by the schema: {record.get('kind')}"},
                                             default_host=host, default_source="agent_local")


def ingest_files(paths: Sequence[Path], store: Store, *, skip_bad: bool = False,
                 on_skip: Callable[[str], None] | None = None, input_format: str | None = None) -> IngestStats:
    stats = IngestStats()

    def skipped(message: str) -> None:
        stats.skipped.append(message)
        if on_skip:
            on_skip(message)

    for path in paths:
        source_name = None if input_format else _load_set_wise(path, store, stats)
        if source_name is None:
            source_name, records = read_any(path, skip_bad=skip_bad, on_skip=skipped, input_format=input_format)
            store_records(store, records, stats)
        stats.sources.append(f"{source_name}:{path}")
    if len(paths) > 1:  # Sysmon and Security logs of one host as two files: their shared connections counted once
        twins = drop_wfp_twins(store.con, store.table("connections"))
        stats.rows["connection"] -= sum(row["count"] for _, row in twins)
        store_records(store, twins, stats)
    return stats


def _load_set_wise(path: Path, store: Store, stats: IngestStats) -> str | None:
    """Parquet, DuckDB files and connhunt JSONL go straight from DuckDB's readers into the store; the name of the
    format, or None when the row-wise reader must read the file (another format, or a line it must judge)."""
    fmt = bulk.sniff_bulk(path)
    if fmt is None and path.is_file() and sniff(path)[0] == "jsonl":
        fmt = "jsonl"
    if fmt is None:
        return None
    counts = bulk.load(path, store, fmt)
    if counts is None or (fmt == "jsonl" and not any(counts.values())):
        return None  # the row reader judges it (and names an empty file)
    if fmt != "jsonl" and not any(counts.values()):
        raise InputError(f"{path}: no connhunt rows in this {fmt} file")
    for kind, n in counts.items():
        stats.rows[kind] += n
    return fmt


def analyse(store: Store, config: Config, *, sources: Sequence[str] = (), notes: Sequence[str] = (),
            now: datetime | None = None, collected_hosts: Sequence[str] = (), progress: Progress = None,
            min_risk: str = "Low") -> HuntReport:
    """Score everything in ``store`` into a HuntReport; ``collected_hosts`` are hosts collected even if they
    turned out to have nothing to report. ``progress(stage, done, total)`` is called as the work goes. Only
    findings at ``min_risk`` or above are built (the report counts the rest)."""
    now = now or datetime.now(timezone.utc)
    if config.baseline:
        attach_baseline(store, Path(config.baseline))
    if progress:
        progress("filtered view", 0, 1)
    ctx = Context(store, config)
    run_detectors(ctx, progress=progress)
    findings, chains = correlate(score(ctx, now, progress=progress, min_risk=min_risk))
    health = tuple(store.query("SELECT host, source, \"check\", sum(count) AS count, min(message) AS message "
                               "FROM health GROUP BY ALL ORDER BY host, source, \"check\""))
    rows = {table: store.count(table) for table in ("connections", "listeners", "dns")}
    hosts = tuple(sorted(set(ctx.hosts) | set(collected_hosts)))
    return HuntReport(generated_at=now, hosts=hosts, sources=tuple(sources), rows=rows,
                      findings=tuple(findings), chains=tuple(chains), health=health, notes=tuple(notes),
                      suppressed=ctx.suppressed, totals=risk_counts(ctx))


def local_resolvers(path: Path = Path("/etc/resolv.conf")) -> set[str]:
    """The nameservers this host is configured to use (triage treats them as expected resolvers)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return set()
    return {parts[1] for parts in (line.split() for line in lines)
            if len(parts) >= 2 and parts[0] == "nameserver"}
