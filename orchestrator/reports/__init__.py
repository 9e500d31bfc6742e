"""Reports: pure functions from one HuntReport to text. Each format is a module with ``render(report) -> str``."""

from __future__ import annotations

from dataclasses import replace
from enum import Enum

from orchestrator.model import HuntReport, risk_rank
from orchestrator.reports import csv_report, html, json_report, markdown, sigma, text


class Format(str, Enum):
    text = "text"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    markdown = "markdown"
    sigma = "sigma"
    html = "html"


_RENDERERS = {Format.text: text.render, Format.json: json_report.render, Format.jsonl: json_report.render_lines,
              Format.csv: csv_report.render, Format.markdown: markdown.render, Format.sigma: sigma.render,
              Format.html: html.render}


def at_least(report: HuntReport, min_risk: str) -> HuntReport:
    """The report with only findings at ``min_risk`` or above (chains keep only what is shown)."""
    floor = risk_rank(min_risk)
    findings = tuple(f for f in report.findings if risk_rank(f.risk) >= floor)
    shown = {f.hunt_id for f in findings}
    chains = tuple(replace(c, hunt_ids=tuple(h for h in c.hunt_ids if h in shown)) for c in report.chains)
    return replace(report, findings=findings, chains=tuple(c for c in chains if len(c.hunt_ids) >= 2))


def render(report: HuntReport, fmt: Format) -> str:
    return _RENDERERS[fmt](report)
