"""Processing pipelines connhunt puts in front of the backends' own, where those leave a gap for connhunt's rules:
direction words instead of Sysmon's Initiated, ECS names for Linux rules, and Falcon's file-name-only images."""

from __future__ import annotations

from typing import Any


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
