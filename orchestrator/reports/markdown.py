"""Markdown: a summary table and one section per finding, for tickets and case notes."""

from __future__ import annotations

from orchestrator.model import HuntReport
from orchestrator.reports.prose import evidence, recommended_action


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(report: HuntReport) -> str:
    lines = [f"# connhunt report {report.generated_at:%Y-%m-%d %H:%M} UTC", "",
             f"{len(report.hosts)} host(s), {report.rows.get('connections', 0)} connection rows, "
             f"{report.rows.get('dns', 0)} DNS rows, {len(report.findings)} finding(s).", ""]
    if report.findings:
        lines += ["| Hunt ID | Risk | Confidence | Technique | Host | Process | Destination |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {f.hunt_id} | {f.risk} | {f.confidence} | {f.technique} | {_cell(f.host)} | "
                  f"{_cell(f.process_path or f.process_name)} | {_cell(f.destination)} |" for f in report.findings]
    for f in report.findings:
        lines += ["", f"## {f.hunt_id}: {f.technique} on {_cell(f.host)}", "",
                  f"- **Risk Level:** {f.risk}", f"- **Confidence:** {f.confidence}", f"- **User:** {_cell(f.user)}",
                  "- **Evidence:**"]
        lines += [f"  - `{e.replace('`', chr(39))}`" for e in evidence(f)]
        lines += [f"- **Recommended Action:** {_cell(recommended_action(f))}"]
    if report.chains:
        lines += ["", "## Chains", ""] + [f"- {c.chain_id}: {', '.join(c.hunt_ids)} ({c.reason})"
                                          for c in report.chains]
    if report.health:
        lines += ["", "## Collection health", ""] + [f"- {h['host']} [{h['source']}] {h['check']}: {h['message']}"
                                                     for h in report.health]
    return "\n".join(lines) + "\n"
