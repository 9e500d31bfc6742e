"""Judge a connhunt JSON report against the generator's truth.json: each planted anomaly's best risk, the benign
findings at High or above (named when they are a known lookalike), and the Medium findings per 100 hosts.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

RISKS = ("Low", "Medium", "High", "Critical")
HIGH = RISKS.index("High")


def _rank(risk: str | None) -> int:
    return RISKS.index(risk) if risk in RISKS else -1


def remote_matches(remote: str | None, finding: dict[str, Any]) -> bool:
    """Does a finding concern truth's remote: ``ip:port``, a bare ip (raw sockets), a domain, or a local port?"""
    if not remote:
        return True
    dest = str(finding.get("destination") or "")
    ip, port = finding.get("remote_ip"), finding.get("remote_port")
    if remote.isdigit():  # a listener's local port: the finding names the port or is about that service
        return port == int(remote) or dest.endswith(f":{remote}") or f"port {remote}" in dest or dest == remote
    if ":" in remote:
        host, _, rport = remote.rpartition(":")
        return dest == remote or (ip == host and str(port) == rport)
    return dest == remote or ip == remote or finding.get("domain") == remote or dest.endswith("." + remote)


def evaluate(report: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
    findings = report.get("findings") or []
    hosts = int(truth["hosts"])
    planted_keys = {(p["host"], p["process_identity"]) for p in truth["planted"]}
    planted = []
    for p in truth["planted"]:
        same = [f for f in findings
                if f.get("host") == p["host"] and f.get("process_identity") == p["process_identity"]]
        exact = [f for f in same if remote_matches(p.get("remote"), f)]
        best = max(exact, key=lambda f: _rank(f.get("risk")), default=None)
        loose = max(same, key=lambda f: _rank(f.get("risk")), default=None)
        planted.append({**{k: p[k] for k in ("id", "host", "process_identity", "remote", "scenario")},
                        "best_risk": best["risk"] if best else None,
                        "best_risk_any_destination": loose["risk"] if loose else None,
                        "techniques_found": sorted({t for f in exact for t in f.get("techniques") or []}),
                        "found_high": bool(best) and _rank(best["risk"]) >= HIGH})
    benign = [f for f in findings if (f.get("host"), f.get("process_identity")) not in planted_keys]
    benign_high = [f for f in benign if _rank(f.get("risk")) >= HIGH]
    named = Counter(lookalike_name(f, truth) for f in benign_high)
    medium = [f for f in findings if f.get("risk") == "Medium"]
    inbound_names = {b["name"] for b in truth["benign"] if b["name"].endswith("_inbound")}
    inbound_medium_up = [f for f in benign if _rank(f.get("risk")) >= 1 and lookalike_name(f, truth) in inbound_names]
    by_risk = Counter(f.get("risk") for f in findings)
    found = sum(p["found_high"] for p in planted)
    return {
        "findings": len(findings), "findings_by_risk": {r: by_risk.get(r, 0) for r in reversed(RISKS)},
        "planted": planted, "planted_high": found, "planted_total": len(planted),
        "benign_high": len(benign_high), "benign_high_per_1000_hosts": round(len(benign_high) * 1000 / hosts, 2),
        "benign_high_by_name": dict(named.most_common()),
        "benign_high_examples": [_brief(f) for f in
                                 sorted(benign_high, key=lambda f: -float(f.get("score") or 0))[:20]],
        "medium": len(medium), "medium_per_100_hosts": round(len(medium) * 100 / hosts, 2),
        "medium_by_name": dict(Counter(lookalike_name(f, truth) for f in medium).most_common(15)),
        "inbound_medium_or_above": len(inbound_medium_up),
    }


def lookalike_name(finding: dict[str, Any], truth: dict[str, Any]) -> str:
    """The planted anomaly or known benign lookalike a finding belongs to, else "other: <process>"."""
    identity = finding.get("process_identity")
    for p in truth["planted"]:
        if identity == p["process_identity"] and finding.get("host") == p["host"]:
            return f"planted {p['id']}"
    for b in truth["benign"]:
        if identity in b["process_identity"] and (not b.get("hosts") or finding.get("host") in b["hosts"]):
            return str(b["name"])
    return f"other: {identity}"


def _brief(f: dict[str, Any]) -> dict[str, Any]:
    return {k: f.get(k) for k in ("risk", "score", "host", "process_identity", "destination", "technique")}
