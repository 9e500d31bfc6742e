"""`connhunt rules` and `connhunt pivot`: from a JSON report's findings (or a hunt scenario) to Sigma rules and
the queries of the SIEM in use. Parses arguments and prints; the work is in orchestrator.rules."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli_common import ConfigOpt, MinRiskOpt, Risk, err, reports_errors
from orchestrator.config import load_config
from orchestrator.errors import InputError
from orchestrator.model import risk_rank
from orchestrator.rules import convert, generator, packs, pivot
from orchestrator.rules.convert import Target
from orchestrator.rules.packs import Scenario
from orchestrator.rules.report_input import load_findings

TargetOpt = Annotated[Target, typer.Option("--target", "-t", help="sigma (YAML rules), or the query language: "
                                                                   "splunk, kusto (Defender + Sentinel), esql, "
                                                                   "eql, logscale (Falcon), sqlite.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")]


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None


def _render(groups: list[list[dict[str, object]]], target: Target) -> str:
    if target is Target.sigma:
        return generator.to_yaml([rule for group in groups for rule in group])
    return convert.render([q for group in groups for q in convert.convert_group(group, target)])


def _commented(text: str, target: Target) -> str:
    """VQL and SQL after YAML rules stay a valid YAML stream as comments."""
    if target is not Target.sigma:
        return text
    return "".join(f"# {line}\n" if line else "#\n" for line in text.splitlines())


@reports_errors
def rules(
    report: Annotated[Path | None, typer.Argument(help="A connhunt JSON report (connhunt score ... --format json).",
                                                  show_default=False)] = None,
    target: TargetOpt = Target.sigma,
    min_risk: MinRiskOpt = Risk.Medium,
    pack: Annotated[Scenario | None, typer.Option("--pack", help="Instead of a report: the hunt pack for a "
                                                                  "scenario (rules, plus connhunt's VQL and "
                                                                  "osquery SQL).")] = None,
    config: ConfigOpt = None,
    output: OutputOpt = None,
) -> None:
    """Sigma rules for a report's findings (or a scenario's hunt pack), or their queries with --target.

    Example: connhunt rules report.json --target splunk --min-risk high
    Example: connhunt rules --pack beaconing --target esql
    """
    if pack is not None:
        if report is not None:
            raise typer.BadParameter("give a REPORT or --pack, not both")
        hunt = packs.pack(pack, load_config(config))
        text = _render([list(g) for g in hunt.groups], target)
        text += "\n" + _commented(packs.vql(hunt), target) + "\n" + _commented(packs.osquery_sql(hunt), target)
        _emit(text, output)
        return
    if report is None:
        raise typer.BadParameter("give a REPORT (connhunt score ... --format json), or --pack SCENARIO")
    findings = [f for f in load_findings(report) if risk_rank(f.risk) >= risk_rank(min_risk.value)]
    if not findings:
        err.print(f"{report}: no findings at {min_risk.value} or above", highlight=False)
    groups = [[rule] for rule in generator.rules_for_all(findings)]
    _emit(_render(groups, target), output)


@reports_errors
def pivot_command(
    report: Annotated[Path, typer.Argument(help="A connhunt JSON report.")],
    finding_id: Annotated[str, typer.Argument(help="The finding's Hunt ID, e.g. TH-HUNTIN-20261123-001.")],
    target: TargetOpt = Target.sigma,
    output: OutputOpt = None,
) -> None:
    """The query that finds every host that touched a finding's destination, domain or executable hash.

    Example: connhunt pivot report.json TH-HUNTIN-20261123-001 --target kusto
    """
    findings = load_findings(report)
    chosen = next((f for f in findings if f.hunt_id == finding_id), None)
    if chosen is None:
        known = ", ".join(f.hunt_id for f in findings[:10]) or "none"
        raise InputError(f"{report}: no finding {finding_id} (findings: {known})")
    found = pivot.pivot_rules(chosen)
    if not found:
        raise InputError(f"{report}: finding {finding_id} has no destination address, domain or hash to pivot on")
    _emit(_render([[rule] for rule in found], target), output)


def register(app: typer.Typer) -> None:
    app.command("rules")(rules)
    app.command("pivot")(pivot_command)
