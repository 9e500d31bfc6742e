"""Sigma rules from findings, and the templates hunt packs share: one rule per kind of evidence (the network
connection or DNS query, and the process that made it), each with a stable id, ATT&CK tags, a level from the
risk, the logsource of where the evidence came from, and the fields that make it specific.

Field names are the Sigma taxonomy's (Sysmon's: Image, DestinationIp, QueryName, Hashes...), which every
processing pipeline maps from.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from orchestrator.config import Config
from orchestrator.model import Finding
from orchestrator.rules import attack
from orchestrator.rules.facts import FindingFacts
from orchestrator.schema import UNKNOWN_PROCESS

Rule = dict[str, Any]

LEVELS = {"Critical": "critical", "High": "high", "Medium": "medium", "Low": "low"}
# A stable namespace: the same finding always yields the same rule id, so re-running a hunt does not duplicate rules.
NAMESPACE = uuid.UUID("3f6d1c52-3b1e-4d7a-9a55-0c0f7e1a2b3c")
_DNS_TECHNIQUES = {"T1048.003", "T1071.004"}
_SCAN_TECHNIQUE = "T1046"
_CIDR = re.compile(r"\b([0-9a-fA-F:.]+/\d{1,3})\b")
_TITLE_MAX = 256  # Sigma specification: title is at most 256 characters


def rule_id(*identity: object) -> str:
    return str(uuid.uuid5(NAMESPACE, "|".join(str(part) for part in identity)))


def tags(techniques: Iterable[str]) -> list[str]:
    """ATT&CK tags (tactics first, then techniques) for the techniques the vendored ATT&CK data knows."""
    known = attack.techniques()
    tactic_tags: list[str] = []
    technique_tags: list[str] = []
    for technique in techniques:
        if technique.upper() not in known:
            continue
        for tactic in attack.tactics_of(technique):
            if f"attack.{tactic}" not in tactic_tags:
                tactic_tags.append(f"attack.{tactic}")
        if f"attack.{technique.lower()}" not in technique_tags:
            technique_tags.append(f"attack.{technique.lower()}")
    return tactic_tags + technique_tags


def make_rule(*, title: str, identity: Sequence[object], description: str, category: str, product: str,
              detection: dict[str, Any], techniques: Iterable[str], level: str, date: str | None,
              falsepositives: Sequence[str]) -> Rule:
    """One Sigma rule in the specification's key order."""
    rule: Rule = {
        "title": title if len(title) <= _TITLE_MAX else title[: _TITLE_MAX - 3] + "...",
        "id": rule_id(*identity),
        "status": "experimental",
        "description": description,
        "author": "connhunt",
    }
    if date:
        rule["date"] = date
    rule["tags"] = tags(techniques)
    rule["logsource"] = {"category": category, "product": product}
    rule["detection"] = detection
    rule["falsepositives"] = list(falsepositives)
    rule["level"] = level
    if not rule["tags"]:
        del rule["tags"]
    return rule


def image_field(path: str | None, name: str | None, product: str) -> dict[str, str]:
    """Match the binary by full path when known, else by file name."""
    if path:
        return {"Image": path}
    if name:
        return {"Image|endswith": ("\\" if product == "windows" else "/") + name}
    return {}


def network_selection(*, image: dict[str, str], ips: Sequence[str] = (), cidrs: Sequence[str] = (),
                      ports: Sequence[int] = (), initiated: bool | None = True) -> dict[str, Any]:
    """A network_connection selection; list values match any of them."""
    selection: dict[str, Any] = dict(image)
    if ips:
        selection["DestinationIp"] = _one_or_list(ips)
    if cidrs:
        selection["DestinationIp|cidr"] = _one_or_list(cidrs)
    if ports:
        selection["DestinationPort"] = _one_or_list(ports)
    if initiated is not None:
        # Sysmon's Initiated is the text 'true'/'false'; pipelines (CrowdStrike) pick the event type from it.
        selection["Initiated"] = "true" if initiated else "false"
    return selection


def _one_or_list(values: Sequence[Any]) -> Any:
    return values[0] if len(values) == 1 else list(values)


def command_line_fragment(facts: FindingFacts) -> str | None:
    """The argument that makes the command line specific: one naming the destination, else the longest."""
    tokens = [t.strip("\"'") for t in facts.command_line.split()]
    args = [t for t in tokens[1:] if len(t) >= 4 and t not in (facts.process_path, facts.process_name)]
    if not args:
        return None
    for needle in (facts.remote_ip, facts.domain):
        for arg in args:
            if needle and needle in arg:
                return arg
    return max(args, key=len) if max(len(a) for a in args) >= 6 else None


def _date(facts: FindingFacts) -> str | None:
    """The day the activity was first seen (YYYY-MM-DD), so the rule is the same on every run."""
    day = (facts.first_seen or "")[:10]
    return day if re.fullmatch(r"\d{4}-\d{2}-\d{2}", day) else None


def _scan_cidrs(destination: str) -> list[str]:
    cidrs = []
    for match in _CIDR.findall(destination):
        try:
            cidrs.append(str(ipaddress.ip_network(match, strict=False)))
        except ValueError:
            continue
    return cidrs


def _common(facts: FindingFacts, kind: str, what: str) -> dict[str, Any]:
    known = facts.process_identity not in ("", UNKNOWN_PROCESS)
    name = facts.process_name or (facts.process_identity if known else "unknown process")
    return {
        "title": f"connhunt {facts.hunt_id}: {name} {what}",
        "identity": (kind, facts.product, facts.process_identity, facts.destination, facts.technique),
        "description": (f"connhunt hunt {facts.hunt_id} ({facts.technique}, {facts.risk}) on {facts.host}: "
                        f"{facts.process_path or name} {what}."),
        "product": facts.product,
        "techniques": facts.techniques,
        "level": LEVELS[facts.risk],
        "date": _date(facts),
        "falsepositives": ["Whatever made the activity legitimate, if the finding was not confirmed"],
    }


def network_rule(facts: FindingFacts) -> Rule | None:
    """The connection itself: this binary to this destination (or, inbound, this binary's listening port)."""
    image = image_field(facts.image, facts.process_name, facts.product)
    if facts.direction in ("inbound", "listener"):
        port = facts.local_port or facts.remote_port
        if not image or not port:
            return None
        # Event sources differ on which side of an accepted connection they call "destination": the listening
        # port is matched on either side, the direction says it was accepted.
        detection: dict[str, Any] = {"selection": network_selection(image=image, initiated=False),
                                     "port_destination": {"DestinationPort": port}, "port_source": {"SourcePort": port},
                                     "condition": "selection and 1 of port_*"}
        what = f"accepting connections on port {port}"
    else:
        ips = [facts.remote_ip] if facts.remote_ip else []
        cidrs = [] if ips else _scan_cidrs(facts.destination)
        if not ips and not cidrs and facts.technique == _SCAN_TECHNIQUE:
            # A scan's finding summarises its targets ("internal network (79 hosts, 1 ports)"): match the binary
            # reaching any internal network.
            cidrs = list(Config().internal_networks)
        ports = [facts.remote_port] if facts.remote_port else []
        # Without the binary (the socket's owner was not seen) the address is what is left to match on.
        if not ((ips or cidrs or ports) if image else (ips or cidrs)):
            return None
        detection = {"selection": network_selection(image=image, ips=ips, cidrs=cidrs, ports=ports),
                     "condition": "selection"}
        what = f"connecting to {facts.destination}"
    return make_rule(category="network_connection", detection=detection, **_common(facts, "network", what))


def dns_rule(facts: FindingFacts) -> Rule | None:
    """Queries under the finding's domain from this binary (DNS exfiltration and C2 over DNS)."""
    if not facts.domain:
        return None
    selection: dict[str, Any] = {**image_field(facts.image, facts.process_name, facts.product),
                                 "QueryName|endswith": "." + facts.domain}
    return make_rule(category="dns_query", detection={"selection": selection, "condition": "selection"},
                     **_common(facts, "dns", f"querying names under {facts.domain}"))


def process_rule(facts: FindingFacts) -> Rule | None:
    """The process that made the connection: its executable's hash anywhere, or this binary with this command
    line fragment."""
    detection: dict[str, Any] = {}
    if facts.exe_sha256:
        detection["selection_hash"] = {"Hashes|contains": f"SHA256={facts.exe_sha256.upper()}"}
    fragment = command_line_fragment(facts)
    image = image_field(facts.image, facts.process_name, facts.product)
    if fragment and image:
        detection["selection_image"] = {**image, "CommandLine|contains": fragment}
    if not detection:
        return None
    detection["condition"] = " or ".join(k for k in ("selection_hash", "selection_image") if k in detection)
    return make_rule(category="process_creation", detection=detection,
                     **_common(facts, "process", f"starting ({facts.destination})"))


def rules_for(finding: Finding | FindingFacts) -> list[Rule]:
    """Every rule for one finding: the network (or DNS) evidence first, then the process."""
    facts = finding if isinstance(finding, FindingFacts) else FindingFacts.from_finding(finding)
    dns_first = facts.technique in _DNS_TECHNIQUES
    candidates = ([dns_rule(facts), network_rule(facts)] if dns_first else [network_rule(facts), dns_rule(facts)])
    candidates.append(process_rule(facts))
    return [r for r in candidates if r is not None]


def rules_for_all(findings: Iterable[Finding | FindingFacts]) -> list[Rule]:
    """Rules for many findings; one rule per id (the same pair on several hosts is one rule)."""
    seen: set[str] = set()
    rules = []
    for finding in findings:
        for rule in rules_for(finding):
            if rule["id"] not in seen:
                seen.add(rule["id"])
                rules.append(rule)
    return rules


def to_yaml(rules: Sequence[Rule]) -> str:
    return yaml.safe_dump_all(rules, sort_keys=False, width=1000, allow_unicode=True) if rules else ""
