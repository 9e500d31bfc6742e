"""Judge a hunt report against the lab's ground truth: per scenario found/technique/risk/rank, precision, recall.

A finding matches a truth pair when host and process path agree and the destination does (same remote IP, or the
same domain, or for the scan a T1046 finding on the scanner, or for a bind shell its own listening port). A finding
on a malicious process that matches none of its truth destinations (say, the miner's lookup of its pool) is neither
a hit nor a false alarm: it is "related"; so is a socket the collector could not attribute (TIME_WAIT after the
process closed it) on a malicious host to a malicious destination — it is the attack's own traffic.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.lab.groundtruth import TruthPair

ALARM = ("High", "Critical")


@dataclass(frozen=True)
class ScenarioResult:
    scenario: str
    host: str
    process_path: str
    expected: tuple[str, ...]
    found: bool
    technique: str | None = None
    risk: str | None = None
    rank: int | None = None
    score: float | None = None
    hunt_id: str | None = None
    why_missed: str | None = None
    detectors: tuple[str, ...] = ()  # which detectors spoke for the matched finding, from its evidence


@dataclass(frozen=True)
class Evaluation:
    scenarios: tuple[ScenarioResult, ...]
    precision: float
    recall: float
    alarms: int
    benign_alarms: tuple[dict[str, Any], ...]
    best_benign_rank: int | None
    failures: tuple[str, ...] = field(default_factory=tuple)

    @property
    def targets_met(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "targets_met": self.targets_met}


def _domain_match(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def _in_range(ip: str | None, cidr: str | None) -> bool:
    try:
        return bool(ip and cidr and ipaddress.ip_address(ip) in ipaddress.ip_network(cidr))
    except ValueError:
        return False


def _techniques(finding: dict[str, Any]) -> set[str]:
    return {t for t in [finding.get("technique"), *(finding.get("techniques") or [])] if t}


def _program(finding: dict[str, Any]) -> str | None:
    """The finding's program by identity: a binary deleted while it ran ("... (deleted)") is still that program."""
    path = finding.get("process_path")
    return path.removesuffix(" (deleted)") if isinstance(path, str) else path


def matches(finding: dict[str, Any], truth: TruthPair) -> bool:
    if finding.get("host") != truth.host or _program(finding) != truth.process_path:
        return False
    if truth.local_port is not None:
        return finding.get("destination") == f"port {truth.local_port} (inbound)"
    if truth.remote_range:
        return "T1046" in _techniques(finding) or _in_range(finding.get("remote_ip"), truth.remote_range)
    if truth.remote_ip and finding.get("remote_ip") == truth.remote_ip:
        return True
    return _domain_match(finding.get("domain"), truth.domain)


def ranked(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Findings worst first (by score), as an analyst reads them."""
    return sorted(findings, key=lambda f: -float(f.get("score") or 0.0))


def evaluate(report: dict[str, Any], truth: list[TruthPair]) -> Evaluation:
    findings = ranked(list(report.get("findings") or []))
    rank_of = {id(f): i + 1 for i, f in enumerate(findings)}
    malicious_processes = {(t.host, path) for t in truth for path in (t.process_path, *t.related)}

    results = []
    for pair in truth:
        hits = [f for f in findings if matches(f, pair)]
        if not hits:
            results.append(ScenarioResult(pair.scenario, pair.host, pair.process_path, pair.techniques, False,
                                          why_missed="no finding for this process and destination"))
            continue
        best = hits[0]
        right_technique = bool(_techniques(best) & set(pair.techniques))
        alarm = best.get("risk") in ALARM
        why = None if (right_technique and alarm) else (
            f"risk {best.get('risk')}" if not alarm else f"technique {best.get('technique')}, expected "
                                                         f"{'/'.join(pair.techniques)}")
        results.append(ScenarioResult(pair.scenario, pair.host, pair.process_path, pair.techniques,
                                      right_technique and alarm, best.get("technique"), best.get("risk"),
                                      rank_of[id(best)], best.get("score"), best.get("hunt_id"), why,
                                      _detectors(best)))

    alarms = [f for f in findings if f.get("risk") in ALARM]
    benign = [f for f in findings if not _related(f, truth, malicious_processes)]
    benign_alarms = tuple(_brief(f, rank_of[id(f)]) for f in benign if f.get("risk") in ALARM)
    best_benign_rank = min((rank_of[id(f)] for f in benign), default=None)
    true_alarms = len(alarms) - len(benign_alarms)
    precision = true_alarms / len(alarms) if alarms else 1.0
    recall = sum(r.found for r in results) / len(results) if results else 1.0

    failures = [f"{r.scenario} on {r.host}: {r.why_missed}" for r in results if not r.found]
    if best_benign_rank is not None:
        failures += [f"{r.scenario} on {r.host}: rank {r.rank} is below a benign pair at rank {best_benign_rank}"
                     for r in results if r.found and r.rank is not None and r.rank > best_benign_rank]
    failures += [f"benign pair at {b['risk']}: {b['host']} {b['process_path']} -> {b['destination']}"
                 for b in benign_alarms]
    return Evaluation(tuple(results), precision, recall, len(alarms), benign_alarms, best_benign_rank,
                      tuple(failures))


def _detectors(finding: dict[str, Any]) -> tuple[str, ...]:
    """Detector names from evidence lines such as "[beacon +3.8] beacon: 27 connections every 6.5 s"."""
    names = []
    for line in finding.get("evidence") or []:
        text = line if isinstance(line, str) else str(line.get("fact", ""))
        if text.startswith("[") and "]" in text:
            name = text[1:text.index("]")].split()[0]
            if name not in names:
                names.append(name)
    return tuple(names)


def _related(finding: dict[str, Any], truth: list[TruthPair], malicious: set[tuple[str, str]]) -> bool:
    """Whether a finding is about malicious activity: a malicious process, or an unattributed socket to its C2."""
    if (finding.get("host"), _program(finding)) in malicious:
        return True
    if finding.get("process_path"):
        return False
    return any(t.host == finding.get("host") and t.remote_ip and t.remote_ip == finding.get("remote_ip")
               for t in truth)


def _brief(finding: dict[str, Any], rank: int) -> dict[str, Any]:
    keys = ("hunt_id", "host", "process_path", "destination", "technique", "risk", "score")
    return {"rank": rank, **{k: finding.get(k) for k in keys},
            "evidence": [e if isinstance(e, str) else e.get("fact", e) for e in (finding.get("evidence") or [])][:6]}


def table(evaluation: Evaluation) -> str:
    """The benchmark table in Markdown (also readable as plain text)."""
    lines = ["| scenario | host | found | technique | risk | rank | score | detectors |",
             "|---|---|---|---|---|---|---|---|"]
    for r in evaluation.scenarios:
        score = f"{r.score:.1f}" if r.score is not None else "-"
        lines.append(f"| {r.scenario} | {r.host} | {'yes' if r.found else 'no'} | {r.technique or '-'} | "
                     f"{r.risk or '-'} | {r.rank or '-'} | {score} | {', '.join(r.detectors) or '-'} |")
    lines += ["", f"precision {evaluation.precision:.2f} · recall {evaluation.recall:.2f} · "
                  f"alarms (High/Critical) {evaluation.alarms} · benign pairs at High/Critical "
                  f"{len(evaluation.benign_alarms)} · best-ranked benign pair: {evaluation.best_benign_rank or '-'}"]
    if evaluation.failures:
        lines += ["", "targets missed:", *(f"- {f}" for f in evaluation.failures)]
    else:
        lines += ["", "all targets met"]
    return "\n".join(lines) + "\n"
