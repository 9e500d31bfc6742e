"""Sigma rules to the query languages of the SIEMs in use, with pySigma backends and their processing pipelines:
SPL (Splunk, Sysmon field names), KQL (Defender for Endpoint and Sentinel ASIM), ES|QL and EQL (Elastic, ECS),
LogScale (CrowdStrike Falcon), and SQL (sqlite, for testing rules against events)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any

from orchestrator.rules import attack, validate
from orchestrator.rules.pipelines import (
    asim_direction_pipeline,
    ecs_direction_pipeline,
    ecs_linux_pipeline,
    falcon_pipeline_additions,
    xdr_direction_pipeline,
)


class Target(str, Enum):
    splunk = "splunk"
    kusto = "kusto"
    esql = "esql"
    eql = "eql"
    logscale = "logscale"
    sqlite = "sqlite"
    sigma = "sigma"


@dataclass(frozen=True)
class Query:
    target: str
    dialect: str  # which product the query is for, e.g. "Sentinel (ASIM)"
    rule_id: str
    title: str
    query: str | None
    error: str | None = None  # why the backend could not convert this rule


@dataclass(frozen=True)
class _Variant:
    dialect: str
    backend: Callable[..., Any]
    pipeline: Callable[[str], Any]  # the rule's logsource category -> processing pipeline (or None)


def _variants(target: Target) -> list[_Variant]:
    if target is Target.splunk:
        from sigma.backends.splunk import SplunkBackend
        from sigma.pipelines.splunk import splunk_windows_pipeline
        from sigma.pipelines.sysmon import sysmon_pipeline

        return [_Variant("Splunk SPL (Sysmon)", SplunkBackend, lambda _: sysmon_pipeline() + splunk_windows_pipeline())]
    if target is Target.kusto:
        from sigma.backends.kusto import KustoBackend
        from sigma.pipelines.microsoftxdr import microsoft_xdr_pipeline
        from sigma.pipelines.sentinelasim import sentinel_asim_pipeline

        # ASIM has a DNS schema (the _Im_Dns parser); the backend picks tables by category and has none for DNS.
        def asim(category: str) -> Any:
            return asim_direction_pipeline() + sentinel_asim_pipeline(
                query_table="_Im_Dns" if category == "dns_query" else None)

        return [_Variant("Defender for Endpoint (KQL)", KustoBackend,
                         lambda _: xdr_direction_pipeline() + microsoft_xdr_pipeline()),
                _Variant("Sentinel ASIM (KQL)", KustoBackend, asim)]
    if target in (Target.esql, Target.eql):
        from sigma.backends.elasticsearch import EqlBackend, ESQLBackend
        from sigma.pipelines.elasticsearch import ecs_windows

        backend = ESQLBackend if target is Target.esql else EqlBackend
        return [_Variant(f"Elastic {'ES|QL' if target is Target.esql else 'EQL'} (ECS)", backend,
                         lambda _: ecs_direction_pipeline() + ecs_windows() + ecs_linux_pipeline())]
    if target is Target.logscale:
        from sigma.backends.crowdstrike import LogScaleBackend
        from sigma.pipelines.crowdstrike import crowdstrike_falcon_pipeline

        return [_Variant("CrowdStrike Falcon LogScale", LogScaleBackend,
                         lambda _: falcon_pipeline_additions() + crowdstrike_falcon_pipeline())]
    if target is Target.sqlite:
        from sigma.backends.sqlite import sqliteBackend

        return [_Variant("SQLite", sqliteBackend, lambda _: None)]
    raise ValueError(f"no query backend for target {target.value}")


@cache
def _backend(target: Target, index: int, category: str) -> Any:
    """Backends are reused: building their pipelines is half the cost of a conversion, and each convert() starts
    from the configured pipeline again."""
    variant = _variants(target)[index]
    pipeline = variant.pipeline(category)
    return variant.backend(pipeline) if pipeline is not None else variant.backend()


def convert_group(rules: Sequence[dict[str, Any]], target: Target) -> list[Query]:
    """Convert rules that belong together (a correlation and its base rules) into the target's queries; one
    Query per dialect and emitted query, or one with ``error`` when the backend cannot express the rules."""
    from sigma.exceptions import SigmaError

    attack.use_local_data()
    head = rules[-1]  # a correlation comes after the rules it refers to
    category = str(rules[0].get("logsource", {}).get("category", ""))
    out = []
    for index, variant in enumerate(_variants(target)):
        try:
            result = _backend(target, index, category).convert(validate.parse(rules))
        except (SigmaError, NotImplementedError) as exc:
            # pySigma's messages can run to a paragraph; the first line says what is missing.
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            out.append(Query(target.value, variant.dialect, head["id"], head["title"], None, reason))
            continue
        for query in [result] if isinstance(result, str) else result:
            out.append(Query(target.value, variant.dialect, head["id"], head["title"], str(query)))
    return out


def convert(rules: Sequence[dict[str, Any]], target: Target) -> list[Query]:
    """Each rule on its own, so one the backend cannot convert does not hide the others."""
    return [q for rule in rules for q in convert_group([rule], target)]


def render(queries: Sequence[Query]) -> str:
    """The queries as a hunter pastes them: a comment line naming the rule, then the query."""
    blocks = []
    for q in queries:
        head = f"# {q.dialect}: {q.title} ({q.rule_id})"
        blocks.append(f"{head}\n# not convertible: {q.error}" if q.error else f"{head}\n{q.query}")
    return "\n\n".join(blocks) + ("\n" if blocks else "")


SIEM_TARGETS = (Target.splunk, Target.kusto, Target.esql, Target.eql, Target.logscale)


def finding_queries(finding: Any, targets: Sequence[Target] = SIEM_TARGETS) -> list[Query]:
    """The queries for one finding's rules (a Finding or FindingFacts), target by target: what the HTML report
    shows beside the finding."""
    from orchestrator.rules.generator import rules_for

    rules = rules_for(finding)
    return [q for target in targets for q in convert(rules, target)]
