"""The hunt format a responder reads: one block per finding, most severe first, then chains and health."""

from __future__ import annotations

from collections import Counter

from orchestrator.model import RISKS, Finding, HuntReport
from orchestrator.reports.prose import evidence as evidence_lines
from orchestrator.reports.prose import recommended_action

_CONTROL = {c: f"\\x{c:02x}" for c in range(32)} | {10: "\\n", 13: "\\r", 9: "\\t", 127: "\\x7f"}


def printable(text: str) -> str:
    """Control characters escaped: a command line with a newline or an ANSI escape cannot forge report lines."""
    return text.translate(_CONTROL)


def finding_block(finding: Finding) -> str:
    evidence = "\n".join(f"  - {printable(line)}" for line in evidence_lines(finding))
    chain = f"\n  - linked in chain {finding.chain}" if finding.chain else ""
    return (f"Hunt ID: {finding.hunt_id}\n"
            f"Technique: {finding.technique}\n"
            f"Host: {printable(finding.host)}\n"
            f"User: {printable(finding.user)}\n"
            f"Evidence:\n{evidence}{chain}\n"
            f"Risk Level: {finding.risk}\n"
            f"Confidence: {finding.confidence}\n"
            f"Recommended Action: {printable(recommended_action(finding))}\n")


def render(report: HuntReport) -> str:
    counts = Counter(f.risk for f in report.findings)
    by_risk = ", ".join(f"{counts[r]} {r}" for r in reversed(RISKS) if counts[r])
    header = (f"connhunt report {report.generated_at:%Y-%m-%d %H:%M:%S} UTC: {len(report.hosts)} host(s), "
              f"{report.rows.get('connections', 0)} connection rows, {report.rows.get('dns', 0)} DNS rows; "
              f"{len(report.findings)} finding(s){f' ({by_risk})' if by_risk else ''}\n")
    parts = [header]
    if not report.findings:
        parts.append("\nNo findings at or above the requested risk level.\n")
    parts.extend("\n" + finding_block(f) for f in report.findings)
    if report.chains:
        parts.append("\nChains (findings that belong together):\n")
        parts.extend(f"  {c.chain_id}: {', '.join(c.hunt_ids)} ({c.reason})\n" for c in report.chains)
    if report.health:
        parts.append("\nCollection health (what could not be seen):\n")
        parts.extend(_health_line(h) for h in report.health)
    suppressed = {table: n for table, n in report.suppressed.items() if n and table != "ignored_peers"}
    if suppressed:
        parts.append("\nSuppressed by the allowlist: " + ", ".join(f"{n} {t} row(s)" for t, n in suppressed.items())
                     + "\n")
    parts.extend(f"\nNote: {note}\n" for note in report.notes)
    return "".join(parts)


def _health_line(item: dict[str, object]) -> str:
    count = f" (count {item['count']})" if item.get("count") is not None else ""
    return f"  {item['host']} [{item['source']}] {item['check']}: {item['message']}{count}\n"
