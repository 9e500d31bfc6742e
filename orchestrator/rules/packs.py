"""Hunt packs: per scenario, the Sigma rules a hunter runs against the SIEM before (or instead of) collecting,
built from the same templates as the rules for findings, with the thresholds and lists the detectors use, plus
the Velociraptor VQL and osquery SQL that connhunt itself runs for that scenario (read from ``artifacts/``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import yaml

from orchestrator.config import Config
from orchestrator.detectors.cryptominer import POOL_PORTS
from orchestrator.detectors.dns_exfil import MIN_UNIQUE_SUBDOMAINS
from orchestrator.detectors.lolbin import SHELLS
from orchestrator.detectors.nonstandard_port import C2_PORTS
from orchestrator.resources import artifacts_dir
from orchestrator.rules.generator import Rule, make_rule, network_selection, rule_id, tags

PRODUCTS = ("windows", "linux")
_FALSE_POSITIVES = ["A hunting query: review each hit against what the host is for"]


class Scenario(str, Enum):
    c2_port = "c2-port"
    beaconing = "beaconing"
    dns_exfil = "dns-exfil"
    internal_scan = "internal-scan"
    miner = "miner"
    shell = "shell"


@dataclass(frozen=True)
class Pack:
    scenario: Scenario
    groups: tuple[tuple[Rule, ...], ...]  # each group converts together (a correlation after its base rule)
    artifacts: tuple[str, ...]  # Velociraptor artifact names
    osquery: tuple[str, ...]  # query names in the osquery pack


def _rule(scenario: Scenario, name: str, product: str, category: str, detection: dict[str, Any],
          techniques: Sequence[str], title: str, description: str, level: str = "medium") -> Rule:
    return make_rule(title=f"connhunt pack {scenario.value}: {title} ({product})",
                     identity=("pack", scenario.value, name, product), description=description, category=category,
                     product=product, detection=detection, techniques=techniques, level=level, date=None,
                     falsepositives=_FALSE_POSITIVES)


def _named(rule: Rule, name: str) -> Rule:
    """A base rule a correlation refers to by name; only the correlation is a query of its own."""
    return {**rule, "name": name}


def _correlation(scenario: Scenario, name: str, product: str, base: str, body: dict[str, Any], title: str,
                 description: str, techniques: Sequence[str]) -> Rule:
    return {"title": f"connhunt pack {scenario.value}: {title} ({product})",
            "id": rule_id("pack", scenario.value, name, product), "status": "experimental",
            "description": description, "author": "connhunt", "tags": tags(techniques),
            "correlation": {"rules": [base], **body}, "falsepositives": _FALSE_POSITIVES, "level": "medium"}


def _shell_images(product: str) -> list[str]:
    if product == "windows":
        return ["\\cmd.exe", "\\powershell.exe", "\\pwsh.exe"]
    return sorted(f"/{name}" for name in SHELLS)


def _groups(scenario: Scenario, product: str, internal: Sequence[str]) -> list[tuple[Rule, ...]]:
    if scenario is Scenario.c2_port:
        selection = network_selection(image={}, ports=sorted(C2_PORTS))
        return [(_rule(scenario, "c2-port", product, "network_connection",
                       {"selection": selection, "condition": "selection"}, ["T1571"],
                       "outbound connection to a known C2/callback port",
                       "Outbound connections to ports from published C2 and malware-callback lists "
                       "(the ports connhunt's nonstandard_port detector knows)."),)]
    if scenario is Scenario.beaconing:
        base_name = f"connhunt_pack_outbound_{product}"
        base = _named(_rule(scenario, "outbound", product, "network_connection",
                            {"selection": network_selection(image={}),
                             "filter_internal": {"DestinationIp|cidr": [*internal, "127.0.0.0/8", "::1/128"]},
                             "condition": "selection and not filter_internal"}, ["T1071"],
                            "outbound connection to an external address",
                            "Every outbound connection to an address outside the internal networks "
                            "(base rule of the beaconing correlation)."), base_name)
        corr = _correlation(scenario, "beacon", product, base_name,
                            {"type": "event_count", "group-by": ["Image", "DestinationIp", "DestinationPort"],
                             "timespan": "1h", "condition": {"gte": 60}},
                            "one program calling the same destination at least once a minute for an hour",
                            "Beaconing: 60 or more connections in an hour from one program to one external "
                            "destination. Timing regularity needs connhunt's beacon detector "
                            "(`connhunt hunt --monitor-window`).", ["T1071"])
        return [(base, corr)]
    if scenario is Scenario.dns_exfil:
        long_label = _rule(scenario, "long-label", product, "dns_query",
                           {"selection": {"QueryName|re": r"^[A-Za-z0-9_-]{32,}\."}, "condition": "selection"},
                           ["T1048.003"], "query with a long encoded label",
                           "DNS queries whose first label is 32 or more characters: data encoded into names.")
        base_name = f"connhunt_pack_dns_{product}"
        base = _named(_rule(scenario, "dns-any", product, "dns_query",
                            {"selection": {"QueryName|contains": "."}, "condition": "selection"}, ["T1071.004"],
                            "any DNS query", "Every DNS query (base rule of the unique-names correlation)."),
                      base_name)
        corr = _correlation(scenario, "unique-names", product, base_name,
                            {"type": "value_count", "group-by": ["Image"], "timespan": "5m",
                             "condition": {"gte": MIN_UNIQUE_SUBDOMAINS, "field": "QueryName"}},
                            f"one program asking for {MIN_UNIQUE_SUBDOMAINS} or more different names in 5 minutes",
                            "Many unique names from one program in a short time, as a DNS tunnel or exfiltration "
                            "tool makes.", ["T1048.003"])
        return [(long_label,), (base, corr)]
    if scenario is Scenario.internal_scan:
        base_name = f"connhunt_pack_internal_{product}"
        base = _named(_rule(scenario, "internal", product, "network_connection",
                            {"selection": network_selection(image={}, cidrs=list(internal)),
                             "condition": "selection"}, ["T1046"],
                            "outbound connection to an internal address",
                            "Every connection to an internal address (base rule of the fan-out correlation)."),
                      base_name)
        corr = _correlation(scenario, "fan-out", product, base_name,
                            {"type": "value_count", "group-by": ["Image"], "timespan": "5m",
                             "condition": {"gte": 50, "field": "DestinationIp"}},
                            "one program reaching 50 or more internal hosts in 5 minutes",
                            "Internal fan-out, as a network scan makes.", ["T1046"])
        return [(base, corr)]
    if scenario is Scenario.miner:
        flags = ["stratum+tcp://", "stratum+ssl://", "stratum+tls://", "stratum2+tcp://", "--donate-level"]
        cmd = _rule(scenario, "miner-cmdline", product, "process_creation",
                    {"selection": {"CommandLine|contains": flags}, "condition": "selection"}, ["T1496"],
                    "miner command line (stratum URL or miner flags)",
                    "A process started with a stratum pool URL or a miner's flags.", level="high")
        pool = _rule(scenario, "pool-port", product, "network_connection",
                     {"selection": network_selection(image={}, ports=sorted(POOL_PORTS)),
                      "condition": "selection"}, ["T1496"], "outbound connection to a mining-pool port",
                     "Outbound connections to stratum pool ports (the ports connhunt's cryptominer detector knows).",
                     level="low")
        return [(cmd,), (pool,)]
    # shell: a reverse shell is a shell holding an outbound connection; a bind shell accepts one.
    images = {"Image|endswith": _shell_images(product)}
    reverse = _rule(scenario, "reverse-shell", product, "network_connection",
                    {"selection": network_selection(image=images, initiated=True),
                     "filter_internal": {"DestinationIp|cidr": ["127.0.0.0/8", "::1/128"]},
                     "condition": "selection and not filter_internal"}, ["T1059"],
                    "shell or interpreter with an outbound connection",
                    "Shells, interpreters and netcat-like tools connecting out: reverse shells.", level="high")
    bind = _rule(scenario, "bind-shell", product, "network_connection",
                 {"selection": network_selection(image=images, initiated=False), "condition": "selection"},
                 ["T1059"], "shell or interpreter accepting a connection", "Bind shells: a shell accepting a "
                 "connection.", level="high")
    groups: list[tuple[Rule, ...]] = [(reverse,), (bind,)]
    if product == "linux":
        groups.append((_rule(scenario, "shell-cmdline", product, "process_creation",
                             {"selection": {"CommandLine|contains": ["/dev/tcp/", "/dev/udp/", " -e /bin/sh",
                                                                     " -e /bin/bash", "pty.spawn", "bash -i"]},
                              "condition": "selection"}, ["T1059.004"], "reverse-shell command line",
                             "Command lines of the classic reverse shells (/dev/tcp redirection, nc -e, "
                             "pty.spawn)."),))
    return groups


_ARTIFACTS = {Scenario.beaconing: ("Custom.Connhunt.Monitor", "Custom.Connhunt.Windows.SysmonNetwork"),
              Scenario.dns_exfil: ("Custom.Connhunt.DNS",)}
_OSQUERY = {Scenario.dns_exfil: ("connhunt_dns_lookups_windows", "connhunt_dns_cache_windows")}


def pack(scenario: Scenario, config: Config | None = None) -> Pack:
    internal = list((config or Config()).internal_networks)
    groups = tuple(g for product in PRODUCTS for g in _groups(scenario, product, internal))
    return Pack(scenario, groups,
                _ARTIFACTS.get(scenario, ("Custom.Connhunt.Netstat", "Custom.Connhunt.Windows.SysmonNetwork")),
                _OSQUERY.get(scenario, ("connhunt_connections", "connhunt_connections_windows")))


def rules(p: Pack) -> list[Rule]:
    return [rule for group in p.groups for rule in group]


def vql(p: Pack) -> str:
    """The VQL of the pack's Velociraptor artifacts, as shipped in artifacts/velociraptor."""
    blocks = []
    for name in p.artifacts:
        artifact = yaml.safe_load((artifacts_dir("velociraptor") / f"{name}.yaml").read_text(encoding="utf-8"))
        parts = [f"-- Velociraptor artifact {name} (connhunt artifacts push; connhunt hunt collects it)"]
        if artifact.get("export"):
            parts.append(artifact["export"].rstrip())
        for source in artifact.get("sources", []):
            parts.append(f"-- source {source.get('name', '(default)')}")
            if source.get("precondition"):
                parts.append(f"-- precondition: {source['precondition'].strip()}")
            parts.append(str(source.get("query", "")).rstrip())
        blocks.append("\n".join(parts))
    return "\n\n".join(blocks) + "\n"


def osquery_sql(p: Pack) -> str:
    """The osquery SQL of the pack's queries in artifacts/osquery/connhunt.conf."""
    conf = json.loads((artifacts_dir("osquery") / "connhunt.conf").read_text(encoding="utf-8"))
    blocks = []
    for name in p.osquery:
        query = conf["queries"][name]
        blocks.append(f"-- osquery {name} ({query.get('platform', 'all')}, every {query.get('interval')} s)\n"
                      f"{query['query'].rstrip().rstrip(';')};")
    return "\n\n".join(blocks) + "\n"
