"""CSV: one row per finding, for spreadsheets and ticket imports."""

from __future__ import annotations

import csv
import io

from orchestrator.model import HuntReport, utc_text
from orchestrator.reports.prose import evidence, recommended_action

COLUMNS = ("hunt_id", "risk", "confidence", "score", "technique", "techniques", "host", "user", "process_name",
           "process_path", "command_line", "parent", "pids", "destination", "remote_ip", "remote_port", "domain",
           "first_seen", "last_seen", "connections", "hosts_with_pair", "fleet_hosts", "chain", "recommended_action",
           "evidence")


def render(report: HuntReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for f in report.findings:
        row = {**f.to_dict(), "first_seen": utc_text(f.first_seen), "last_seen": utc_text(f.last_seen),
               "techniques": " ".join(f.techniques), "pids": " ".join(map(str, f.pids)),
               "evidence": " | ".join(evidence(f)), "recommended_action": recommended_action(f)}
        writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
    return out.getvalue()
