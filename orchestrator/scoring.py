"""Scoring: combine the detectors' signals per (host, process identity, destination) into findings.

Each detector counts once per pair (its strongest signal); prevalence scales the total; the risk level follows
from the total and the confidence from how many independent behaviours agree. Every contribution is kept, so a
finding explains its own score.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.detectors.base import Context, Pair
from orchestrator.model import Contribution, Finding, PairKey, Signal
from orchestrator.schema import UNKNOWN_PROCESS

# The user of a DNS-only process comes from any connection row of the same pid on the same host.
DNS_FACTS_SQL = """
WITH users AS (SELECT host, pid, any_value(username) AS username FROM connections
               WHERE pid IS NOT NULL GROUP BY ALL)
SELECT d.host, d.process_identity, any_value(d.process_name) AS process_name,
       any_value(d.process_path) AS process_path,
       coalesce(list(DISTINCT d.pid) FILTER (WHERE d.pid IS NOT NULL), []) AS pids,
       count(*) AS queries, min(d.timestamp) AS first_seen, max(d.timestamp) AS last_seen,
       any_value(u.username) AS username
FROM dns d LEFT JOIN users u ON u.host = d.host AND u.pid = d.pid
GROUP BY d.host, d.process_identity
"""
# Signals about how common a pair is, not about what it does: alone they never make a finding.
STATISTICS = {"rarity", "novelty", "unattributed"}
RISK_THRESHOLDS = ((9.0, "Critical"), (6.0, "High"), (3.0, "Medium"))


def risk_for(score: float) -> str:
    return next((risk for floor, risk in RISK_THRESHOLDS if score >= floor), "Low")


@dataclass
class _Group:
    key: PairKey
    signals: dict[str, Signal]  # detector -> strongest signal

    def add(self, signal: Signal) -> None:
        current = self.signals.get(signal.detector)
        if current is None or (signal.weight, signal.scale < 1) > (current.weight, current.scale < 1):
            self.signals[signal.detector] = signal

    @property
    def behavioural(self) -> list[Signal]:
        return [s for s in self.signals.values() if not s.context]

    @property
    def score(self) -> float:
        total = sum(s.weight for s in self.signals.values())
        scale = min((s.scale for s in self.signals.values()), default=1.0)
        return round(total * scale, 2)


def group_signals(signals: Iterable[Signal]) -> list[_Group]:
    """One group per pair; groups a covering signal (a scan) stands for fold into it, and sockets nobody owned
    fold into the process that talks to the same destination on the same host."""
    groups: dict[PairKey, _Group] = {}
    covering: list[Signal] = []
    for signal in signals:
        groups.setdefault(signal.key, _Group(signal.key, {})).add(signal)
        if signal.covers:
            covering.append(signal)
    for signal in covering:
        target = groups[signal.key]
        for destination in signal.covers:
            folded = groups.pop(PairKey(signal.key.host, signal.key.process_identity, destination), None)
            if folded is None:
                continue
            for inner in folded.signals.values():
                if inner.context:
                    target.add(inner)
    _fold_orphans(groups)
    return list(groups.values())


def _fold_orphans(groups: dict[PairKey, _Group]) -> None:
    """A beacon's closed connections linger in TIME_WAIT with no owner; they are the same traffic, not a second
    finding, when a known process on that host talks to the same destination."""
    owners: dict[tuple[str, str], list[_Group]] = defaultdict(list)
    for key, group in groups.items():
        if key.process_identity != UNKNOWN_PROCESS:
            for destination in {key.destination} | _covered(group):
                owners[(key.host, destination)].append(group)
    for key in [k for k in groups if k.process_identity == UNKNOWN_PROCESS]:
        # A scan's orphans summarise to their own "internal network (...)" destination: match on what it covers.
        found = {id(g): g for d in {key.destination} | _covered(groups[key]) for g in owners.get((key.host, d), [])}
        for owner in found.values():
            owner.add(Signal("unattributed", "", owner.key, 0.0, ("more connections to this destination had no "
                             "owner when sampled (closed, TIME_WAIT): folded in here",), context=True))
        if found:
            del groups[key]


def _covered(group: _Group) -> set[str]:
    return {d for s in group.signals.values() for d in s.covers}


class ProcessFacts:
    """Looks up the process and endpoint facts for a pair key, including keys that summarise several pairs."""

    def __init__(self, ctx: Context) -> None:
        self.by_key: dict[PairKey, list[Pair]] = defaultdict(list)
        self.by_process: dict[tuple[str, str], list[Pair]] = defaultdict(list)
        for pair in ctx.pairs:
            self.by_key[pair.key].append(pair)
            self.by_process[(pair.host, pair.process_identity)].append(pair)
        self.dns: dict[tuple[str, str], dict[str, Any]] = {
            (r["host"], r["process_identity"]): r
            for r in ctx.store.query(DNS_FACTS_SQL)}

    def pairs_for(self, key: PairKey) -> list[Pair]:
        return self.by_key.get(key) or self.by_process.get((key.host, key.process_identity), [])


def score(ctx: Context, signals: Iterable[Signal], hunt_date: datetime) -> list[Finding]:
    facts = ProcessFacts(ctx)
    # Prevalence alone (a rare but otherwise unremarkable pair) is a stacking statistic, not a finding.
    groups = [g for g in group_signals(signals) if g.score > 0 and set(g.signals) - STATISTICS]
    groups.sort(key=lambda g: (-g.score, g.key.host, g.key.process_identity, g.key.destination))
    findings = []
    for seq, group in enumerate(groups, start=1):
        findings.append(_finding(ctx, facts, group, f"TH-HUNTIN-{hunt_date:%Y%m%d}-{seq:03d}"))
    return findings


def _primary(group: _Group) -> Signal:
    from orchestrator.detectors import DETECTORS

    order = {d.name: i for i, d in enumerate(DETECTORS)}
    pool = group.behavioural or list(group.signals.values())
    return max(pool, key=lambda s: (s.weight, -order.get(s.detector, 99)))


def _finding(ctx: Context, facts: ProcessFacts, group: _Group, hunt_id: str) -> Finding:
    key = group.key
    pairs = facts.pairs_for(key)
    exact = facts.by_key.get(key, [])
    dns = facts.dns.get((key.host, key.process_identity), {})
    first = pairs[0] if pairs else None
    primary = _primary(group)
    total = group.score
    risk = risk_for(total)
    attributed = any(p.attributed for p in pairs) or bool(dns.get("pids"))
    confidence = _confidence(group, attributed)
    techniques = tuple(dict.fromkeys([primary.technique] + [s.technique for s in group.signals.values()
                                                            if s.weight > 0 and s.technique]))
    path = (first.process_path if first else None) or dns.get("process_path") or ""
    name = (first.process_name if first else None) or dns.get("process_name") or key.process_identity
    pids = tuple(sorted({pid for p in pairs for pid in p.pids} | set(dns.get("pids") or [])))
    ppids = sorted({pid for p in pairs for pid in p.ppids})
    timeline = exact or pairs
    first_seen = min((p.first_seen for p in timeline if p.first_seen), default=dns.get("first_seen"))
    last_seen = max((p.last_seen for p in timeline if p.last_seen), default=dns.get("last_seen"))
    connections = sum(p.connections for p in timeline) if timeline else int(dns.get("queries") or 0)
    prevalence = group.signals.get("rarity")
    evidence = _evidence(key, first, exact or pairs, path, name, pids, ppids, first_seen, last_seen, connections,
                         dns, group)
    contributions = tuple(
        Contribution(s.detector, s.technique, s.weight, "; ".join(s.facts))
        for s in sorted(group.signals.values(), key=lambda s: -s.weight))
    return Finding(
        hunt_id=hunt_id, technique=primary.technique, techniques=techniques, host=key.host,
        user=(first.username if first else None) or dns.get("username") or "unknown", process_name=name,
        process_path=path,
        process_identity=key.process_identity, command_line=(first.command_line if first else None) or "",
        parent=_parent(first), pids=pids, ppids=tuple(ppids), destination=key.destination,
        remote_ip=primary.remote_ip or (first.remote_ip if first and exact else None),
        remote_port=primary.remote_port if primary.remote_ip else (first.remote_port if first and exact else None),
        domain=primary.domain, first_seen=first_seen, last_seen=last_seen, connections=connections,
        hosts_with_pair=prevalence.hosts if prevalence else None, fleet_hosts=ctx.fleet_size, risk=risk,
        confidence=confidence,
        score=total, evidence=evidence, contributions=contributions,
        recommended_action=recommend(risk, primary.technique, key.host, name, pids, key.destination,
                                     blockable=bool(primary.domain or (primary.remote_ip and primary.remote_ip
                                                                       not in ("0.0.0.0", "::")))))


def _confidence(group: _Group, attributed: bool) -> str:
    """How sure the finding is: independent behaviours agreeing, on a socket whose owner is known."""
    behavioural = group.behavioural
    points = sum(s.weight for s in behavioural)
    if len(behavioural) >= 2 or points >= 6 or (behavioural and len(group.signals) >= 3):
        level = 2
    elif behavioural or len(group.signals) >= 2:
        level = 1
    else:
        level = 0
    # A socket nobody could attribute to a process is one level less certain.
    return ("Low", "Medium", "High")[max(0, level - (0 if attributed else 1))]


def _parent(pair: Pair | None) -> str:
    if pair is None or not (pair.parent_name or pair.parent_path):
        return "unknown"
    ppid = f" (ppid {','.join(map(str, pair.ppids))})" if pair.ppids else ""
    return f"{pair.parent_name or ''} {pair.parent_path or ''}".strip() + ppid


def _evidence(key: PairKey, first: Pair | None, pairs: list[Pair], path: str, name: str, pids: tuple[int, ...],
              ppids: list[int], first_seen: datetime | None, last_seen: datetime | None, connections: int,
              dns: dict[str, Any], group: _Group) -> tuple[str, ...]:
    lines = [f"process: {name} (pid {', '.join(map(str, pids)) or 'unknown'})"]
    if path:
        sha = f", sha256 {first.exe_sha256}" if first and first.exe_sha256 else ""
        lines.append(f"binary: {path}{sha}")
    if first and first.command_line:
        lines.append(f"command line: {first.command_line}")
    if first:
        lines.append(f"parent: {_parent(first)}")
    states = sorted({s for p in pairs for s in p.states if s and s != "NONE"})
    protocols = sorted({p.protocol for p in pairs})
    hostname = next((p.remote_hostname for p in pairs if p.remote_hostname), None)
    over = f" over {'/'.join(protocols)}" if protocols else ""
    state = f" state {','.join(states)}" if states else ""
    lines.append(f"remote endpoint: {key.destination}{f' ({hostname})' if hostname else ''}{over}{state}")
    if first_seen:
        span = (last_seen - first_seen).total_seconds() if last_seen else 0.0
        noun = "connections" if pairs else "queries"
        lines.append(f"timing: {connections} {noun} between {first_seen:%Y-%m-%d %H:%M:%S} and "
                     f"{(last_seen or first_seen):%H:%M:%S} UTC ({span:.0f} s)")
    elif dns:
        lines.append(f"timing: {dns.get('queries', 0)} DNS queries")
    for signal in sorted(group.signals.values(), key=lambda s: -s.weight):
        tag = f"[{signal.detector} +{signal.weight:g}{f' x{signal.scale:g}' if signal.scale != 1 else ''}]"
        lines.extend(f"{tag if n == 0 else f'[{signal.detector}]'} {fact}" for n, fact in enumerate(signal.facts))
    return tuple(lines)


_ACTIONS = {
    "T1496": "stop the miner process, remove its binary and persistence, block the pool endpoint",
    "T1046": "find what launched the scanner, check the scanned hosts for follow-on logins",
    "T1095": "capture the raw traffic (tcpdump icmp) to confirm tunnelling, acquire the binary",
    "T1048.003": "block the domain at the resolver and egress port 53 to non-resolvers, review what data was read",
    "T1071.004": "block egress port 53 to anything but the resolvers, review the domain",
}


def recommend(risk: str, technique: str, host: str, name: str, pids: tuple[int, ...], destination: str,
              blockable: bool) -> str:
    pid = f" pid {pids[0]}" if pids else ""
    specific = _ACTIONS.get(technique, f"acquire the binary and memory of {name}{pid}, review its parent and "
                                       f"persistence")
    if risk == "Critical":
        block = f" and block {destination} at egress" if blockable else ""
        return f"Containment: isolate {host}{block} now; then {specific}."
    if risk == "High":
        return f"Investigation (urgent): {specific}; contain {host} if confirmed."
    if risk == "Medium":
        return f"Investigation: confirm whether {name} should reach {destination}; {specific}."
    return f"Monitoring: watch {name} on {host} for repeat connections to {destination}."
