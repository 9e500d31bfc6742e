"""A scoped retro-hunt: for a finding's destination, domain or executable hash, the rules that find every host
that touched it, whatever program did (the finding's own host shows up too)."""

from __future__ import annotations

from orchestrator.rules.facts import FindingFacts
from orchestrator.rules.generator import LEVELS, Rule, make_rule, network_selection

PRODUCTS = ("windows", "linux")


def pivot_rules(facts: FindingFacts) -> list[Rule]:
    """One rule per indicator the finding has (destination, domain, hash), for each OS the fleet may run."""
    indicators: list[tuple[str, str, dict[str, object]]] = []
    if facts.remote_ip:
        # The address on any port: an implant's other channels to the same server count too.
        selection = network_selection(image={}, ips=[facts.remote_ip], initiated=None)
        indicators.append(("destination", "network_connection", {"selection": selection, "what": facts.remote_ip}))
    if facts.domain:
        indicators.append(("domain", "dns_query",
                           {"selection": {"QueryName": facts.domain}, "selection_sub":
                            {"QueryName|endswith": "." + facts.domain}, "what": facts.domain}))
    if facts.exe_sha256:
        indicators.append(("hash", "process_creation",
                           {"selection": {"Hashes|contains": f"SHA256={facts.exe_sha256.upper()}"},
                            "what": f"SHA-256 {facts.exe_sha256}"}))
    rules = []
    for kind, category, parts in indicators:
        what = str(parts.pop("what"))
        detection = {**parts, "condition": "1 of selection*" if len(parts) > 1 else "selection"}
        for product in PRODUCTS:
            rules.append(make_rule(
                title=f"connhunt pivot {facts.hunt_id}: every host that touched {what} ({product})",
                identity=("pivot", kind, what, product),
                description=f"Retro-hunt for {facts.hunt_id} ({facts.technique}): every {product} host whose "
                            f"events show {what}, found first on {facts.host}.",
                category=category, product=product, detection=detection, techniques=facts.techniques,
                level=LEVELS[facts.risk], date=None,
                falsepositives=["Hosts that reached it for a legitimate reason"]))
    return rules
