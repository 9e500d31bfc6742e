"""Scoring on its own: hand-written signal rows in, findings out (no detector runs)."""

from __future__ import annotations

from datetime import datetime

from orchestrator.config import Config
from orchestrator.detectors import Context
from orchestrator.detectors.base import SIGNAL_COLUMNS
from orchestrator.pipeline import ingest_files
from orchestrator.scoring import risk_counts, score
from orchestrator.store import Store
from tests.conftest import connection

DAY = datetime(2026, 11, 23)


def _context(jsonl, signals: list[tuple]) -> Context:
    store = Store()
    records = [connection(pid=1, process_name="a", process_path="/opt/a", remote_ip="203.0.113.1", remote_port=4444),
               connection(pid=2, process_name="b", process_path="/opt/b", remote_ip="10.1.0.1", remote_port=445),
               connection(pid=2, process_name="b", process_path="/opt/b", remote_ip="10.1.0.2", remote_port=445),
               connection(pid=None, process_name=None, process_path=None, attributed=False,
                          remote_ip="203.0.113.1", remote_port=4444, state="TIME_WAIT")]
    ingest_files([jsonl("h.jsonl", records)], store)
    ctx = Context(store, Config())
    ctx.con.execute(f"CREATE OR REPLACE TEMP TABLE signals ({SIGNAL_COLUMNS})")
    for row in signals:
        host, identity, destination, detector, technique, reason, weight, scale, context, covers = row
        ctx.con.execute("INSERT INTO signals (host, process_identity, destination, detector, technique, reason, "
                        "weight, scale, context, facts, covers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, MAP {}, ?)",
                        [host, identity, destination, detector, technique, reason, weight, scale, context, covers])
    return ctx


def test_strongest_signal_per_detector_sum_for_combining_ones_and_the_scale(jsonl) -> None:
    ctx = _context(jsonl, [
        ("h1", "/opt/a", "203.0.113.1:4444", "nonstandard_port", "T1571", "c2_port", 3.0, 1.0, False, []),
        ("h1", "/opt/a", "203.0.113.1:4444", "nonstandard_port", "T1571", "fleet_unusual", 1.5, 1.0, False, []),
        ("h1", "/opt/a", "203.0.113.1:4444", "cryptominer", "T1496", "pool_port", 2.0, 1.0, False, []),
        ("h1", "/opt/a", "203.0.113.1:4444", "cryptominer", "T1496", "miner_cmdline", 5.0, 1.0, False, []),
        ("h1", "/opt/a", "203.0.113.1:4444", "rarity", "T1071", "common", 0.0, 0.4, True, []),
    ])
    (finding,) = score(ctx, DAY)
    # max(3, 1.5) for nonstandard_port + (2 + 5) for cryptominer (combine = sum), x0.4: 4.0 -> Medium
    assert (finding.score, finding.risk, finding.technique) == (4.0, "Medium", "T1496")
    assert [(c.detector, c.reason) for c in finding.contributions] == [
        ("cryptominer", "miner_cmdline"), ("nonstandard_port", "c2_port"), ("cryptominer", "pool_port"),
        ("rarity", "common")]
    # the orphaned TIME_WAIT socket to the same destination is this finding's traffic, not another finding
    assert finding.hunt_id == "TH-HUNTIN-20261123-001" and finding.pids == (1,)


def test_a_covering_signal_folds_its_destinations_and_statistics_alone_are_no_finding(jsonl) -> None:
    ctx = _context(jsonl, [
        ("h1", "/opt/b", "internal network (2 hosts, 1 ports)", "internal_scan", "T1046", "fan_out", 4.0, 1.0, False,
         ["10.1.0.1:445", "10.1.0.2:445"]),
        ("h1", "/opt/b", "10.1.0.1:445", "odd_path", "T1036", "writable_dir", 3.0, 1.0, True, []),
        ("h1", "/opt/b", "10.1.0.2:445", "nonstandard_port", "T1571", "lateral", 4.0, 1.0, False, []),
        ("h1", "/opt/a", "203.0.113.1:4444", "rarity", "T1071", "rare", 1.5, 1.0, True, []),
    ])
    findings = score(ctx, DAY)
    assert [(f.destination, f.score, f.technique) for f in findings] == [
        ("internal network (2 hosts, 1 ports)", 7.0, "T1046")]  # the folded lateral signal is dropped, context kept
    assert {c.detector for c in findings[0].contributions} == {"internal_scan", "odd_path"}
    assert findings[0].connections == 2 and findings[0].pids == (2,)


def test_ids_do_not_depend_on_what_is_shown(jsonl) -> None:
    signals = [("h1", "/opt/a", "203.0.113.1:4444", "nonstandard_port", "T1571", "c2_port", 9.5, 1.0, False, []),
               ("h1", "/opt/b", "10.1.0.1:445", "nonstandard_port", "T1571", "lateral", 1.0, 1.0, False, [])]
    ctx = _context(jsonl, signals)
    every = score(ctx, DAY)
    ctx = _context(jsonl, signals)
    shown = score(ctx, DAY, min_risk="High")
    assert [f.hunt_id for f in every] == ["TH-HUNTIN-20261123-001", "TH-HUNTIN-20261123-002"]
    assert [f.hunt_id for f in shown] == ["TH-HUNTIN-20261123-001"]
    assert risk_counts(ctx) == {"Low": 1, "Medium": 0, "High": 0, "Critical": 1}
