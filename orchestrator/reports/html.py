"""HTML: one self-contained page (no scripts, no external assets) with charts of the findings by risk and by
technique, a summary table, and each finding in the hunt format. Every value is escaped."""

from __future__ import annotations

from collections import Counter
from html import escape

from orchestrator.model import RISKS, Finding, HuntReport
from orchestrator.reports.prose import evidence, recommended_action

_COLOURS = {"Critical": "#b30000", "High": "#e34a33", "Medium": "#fdbb84", "Low": "#c7c7c7"}
_STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
          "pre{white-space:pre-wrap;background:#f6f6f6;padding:8px}.risk{color:#fff;padding:1px 6px}")


def bar_chart(title: str, counts: list[tuple[str, int]], colours: dict[str, str] | None = None) -> str:
    """A horizontal bar chart as inline SVG."""
    if not counts:
        return ""
    width, row, label_w = 520, 22, 130
    peak = max(n for _, n in counts) or 1
    bars = []
    for i, (label, n) in enumerate(counts):
        length = max(2, int((width - label_w - 40) * n / peak))
        colour = (colours or {}).get(label, "#3182bd")
        y = i * row
        bars.append(f'<text x="0" y="{y + 15}">{escape(label)}</text>'
                    f'<rect x="{label_w}" y="{y + 3}" width="{length}" height="{row - 6}" fill="{colour}"/>'
                    f'<text x="{label_w + length + 6}" y="{y + 15}">{n}</text>')
    return (f"<h3>{escape(title)}</h3><svg width='{width}' height='{len(counts) * row}' role='img' "
            f"aria-label='{escape(title)}' font-size='13'>{''.join(bars)}</svg>")


def siem_queries(finding: Finding) -> str:
    """The finding's Sigma rules converted for each SIEM (from the rule generator), folded under the finding."""
    from orchestrator.rules.convert import finding_queries

    blocks = "".join(f"<h4>{escape(q.dialect)}: {escape(q.title)}</h4>"
                     f"<pre>{escape(q.query or '# not convertible: ' + str(q.error))}</pre>"
                     for q in finding_queries(finding))
    return f"<details><summary>SIEM queries</summary>{blocks}</details>" if blocks else ""


def render(report: HuntReport) -> str:
    risks = Counter(f.risk for f in report.findings)
    techniques = Counter(f.technique for f in report.findings)
    rows = "".join(
        f"<tr><td><a href='#{f.hunt_id}'>{f.hunt_id}</a></td>"
        f"<td><span class='risk' style='background:{_COLOURS[f.risk]}'>{f.risk}</span></td><td>{f.confidence}</td>"
        f"<td>{escape(f.technique)}</td><td>{escape(f.host)}</td><td>{escape(f.process_path or f.process_name)}</td>"
        f"<td>{escape(f.destination)}</td></tr>" for f in report.findings)
    details = "".join(
        f"<h3 id='{f.hunt_id}'>{f.hunt_id}</h3><pre>Hunt ID: {f.hunt_id}\nTechnique: {escape(f.technique)}\n"
        f"Host: {escape(f.host)}\nUser: {escape(f.user)}\nEvidence:\n"
        + "".join(f"  - {escape(line)}\n" for line in evidence(f))
        + f"Risk Level: {f.risk}\nConfidence: {f.confidence}\nRecommended Action: {escape(recommended_action(f))}"
        f"</pre>{siem_queries(f)}" for f in report.findings)
    health = "".join(f"<li>{escape(str(h['host']))} [{escape(str(h['source']))}] {escape(str(h['check']))}: "
                     f"{escape(str(h['message']))}</li>" for h in report.health)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>connhunt report</title>"
            f"<style>{_STYLE}</style></head><body>"
            f"<h1>connhunt report {report.generated_at:%Y-%m-%d %H:%M} UTC</h1>"
            f"<p>{len(report.hosts)} host(s), {report.rows.get('connections', 0)} connection rows, "
            f"{report.rows.get('dns', 0)} DNS rows, {len(report.findings)} finding(s).</p>"
            + bar_chart("Findings by risk", [(r, risks[r]) for r in reversed(RISKS) if risks[r]], _COLOURS)
            + bar_chart("Findings by technique", techniques.most_common())
            + (f"<h2>Findings</h2><table><tr><th>Hunt ID</th><th>Risk</th><th>Confidence</th><th>Technique</th>"
               f"<th>Host</th><th>Process</th><th>Destination</th></tr>{rows}</table>{details}" if rows else
               "<p>No findings at or above the requested risk level.</p>")
            + (f"<h2>Collection health</h2><ul>{health}</ul>" if health else "")
            + "</body></html>\n")
