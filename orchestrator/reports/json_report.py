"""JSON and JSONL renderings of a HuntReport, for machines (`connhunt ... --format json | jq`)."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.model import Finding, HuntReport
from orchestrator.reports.prose import evidence, recommended_action


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def finding_document(finding: Finding) -> dict[str, Any]:
    """A finding's facts, plus the Evidence lines and Recommended Action as the text report words them."""
    return {**finding.to_dict(), "evidence": list(evidence(finding)),
            "recommended_action": recommended_action(finding)}


def document(report: HuntReport) -> dict[str, Any]:
    return {
        "hunt": {
            "generated_at": report.generated_at,
            "hosts": list(report.hosts),
            "sources": list(report.sources),
            "rows": report.rows,
            "notes": list(report.notes),
            "suppressed": dict(report.suppressed),
            "totals": dict(report.totals),
        },
        "findings": [finding_document(f) for f in report.findings],
        "chains": [{"chain": c.chain_id, "reason": c.reason, "hunt_ids": list(c.hunt_ids)} for c in report.chains],
        "health": [dict(h) for h in report.health],
    }


def render(report: HuntReport) -> str:
    return json.dumps(document(report), default=_default, indent=2) + "\n"


def render_lines(report: HuntReport) -> str:
    """One finding per line, nothing else: the shape log pipelines want."""
    return "".join(json.dumps(finding_document(f), default=_default, sort_keys=False) + "\n" for f in report.findings)
