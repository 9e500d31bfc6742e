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


def direction_pipeline(outbound: str | list[str], inbound: str | list[str], field: str | None = None) -> Any:
    """ECS, ASIM and Defender record the direction as words, not Sysmon's Initiated 'true'/'false': translate the
    value (and, where the backend's pipeline has no mapping for Initiated, the field) so the query still tells a
    connection out from one accepted."""
    from sigma.processing.conditions import IncludeFieldCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import FieldMappingTransformation, MapStringTransformation

    items = [ProcessingItem(identifier="connhunt_initiated_direction",
                            transformation=MapStringTransformation({"true": outbound, "false": inbound}),
                            field_name_conditions=[IncludeFieldCondition(fields=["Initiated"])])]
    if field:
        items.append(ProcessingItem(identifier="connhunt_initiated_field",
                                    transformation=FieldMappingTransformation({"Initiated": field})))
    return ProcessingPipeline(name="connhunt: Initiated as a direction", priority=5, items=items)


# Defender for Endpoint's DeviceNetworkEvents says it in ActionType (its pipeline drops Initiated otherwise).
def xdr_direction_pipeline() -> Any:
    return direction_pipeline(["ConnectionSuccess", "ConnectionAttempt", "ConnectionFailed", "ConnectionRequest"],
                              "InboundConnectionAccepted", field="ActionType")


# ECS network.direction (Elastic Defend writes egress/ingress; the ECS list also has outbound/inbound).
def ecs_direction_pipeline() -> Any:
    return direction_pipeline(["egress", "outbound"], ["ingress", "inbound"])


# ASIM NetworkDirection: Inbound, Outbound, Local, NA.
def asim_direction_pipeline() -> Any:
    return direction_pipeline("Outbound", "Inbound")


def falcon_pipeline_additions() -> Any:
    """What connhunt adds before the Falcon pipeline: its network and DNS events carry only the image's file name,
    so a Windows full path is matched by its name; and it maps Windows network and DNS events only, so a Linux
    one is refused with the reason instead of printed with Sysmon's field names, which Falcon does not have."""
    from sigma.processing.conditions import IncludeFieldCondition, LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import ReplaceStringTransformation, RuleFailureTransformation

    return ProcessingPipeline(name="connhunt: Falcon", priority=5, items=[
        ProcessingItem(identifier="connhunt_falcon_image_file_name",
                       transformation=ReplaceStringTransformation(regex=r"^.*\\", replacement="*\\\\"),
                       rule_conditions=[LogsourceCondition(category="network_connection", product="windows"),
                                        LogsourceCondition(category="dns_query", product="windows")],
                       rule_condition_linking=any,
                       field_name_conditions=[IncludeFieldCondition(fields=["Image"])]),
        ProcessingItem(identifier="connhunt_falcon_no_linux_network",
                       transformation=RuleFailureTransformation(
                           "the CrowdStrike pipeline maps Windows network and DNS events only"),
                       rule_conditions=[LogsourceCondition(category="network_connection", product="linux"),
                                        LogsourceCondition(category="dns_query", product="linux")],
                       rule_condition_linking=any)])


# ECS names of the Sysmon-taxonomy fields connhunt's rules use, as Elastic Defend and Auditbeat write them on Linux.
# The backend's own ecs_windows pipeline maps Windows rules only; without this, a Linux rule would query Sysmon's
# names, which no Elastic index has. (Hashes stays as is: ECS keeps one field per algorithm, not KEY=HEX lists.)
_ECS_LINUX = {"Image": "process.executable", "CommandLine": "process.command_line", "ProcessId": "process.pid",
              "User": "user.name", "DestinationIp": "destination.ip", "DestinationPort": "destination.port",
              "SourceIp": "source.ip", "SourcePort": "source.port", "QueryName": "dns.question.name",
              "Initiated": "network.direction"}


def ecs_linux_pipeline() -> Any:
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import FieldMappingTransformation

    return ProcessingPipeline(name="connhunt: ECS field names on Linux", priority=20, items=[ProcessingItem(
        identifier="connhunt_ecs_linux", transformation=FieldMappingTransformation(dict(_ECS_LINUX)),
        rule_conditions=[LogsourceCondition(product="linux")])])


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
