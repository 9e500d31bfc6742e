"""The words a responder reads, written once from a finding's facts: its Evidence lines and its Recommended Action.

Every renderer (text, markdown, html, csv, json) calls these; none writes its own prose. A detector's wording
is declared on its class (``explain``: reason -> template over the signal's named facts).
"""

from __future__ import annotations

from orchestrator.detectors import BY_NAME
from orchestrator.model import Contribution, Finding


def contribution_text(contribution: Contribution) -> str:
    """One contribution as a sentence, from its detector's template; unknown templates still show every fact."""
    detector = BY_NAME.get(contribution.detector)
    template = detector.explain.get(contribution.reason) if detector else None
    facts = contribution.fact_map
    if template:
        try:
            return template.format(**facts)
        except (KeyError, IndexError, ValueError):
            pass
    return f"{contribution.reason}: " + ", ".join(f"{k}={v}" for k, v in contribution.facts)


def contribution_tag(contribution: Contribution) -> str:
    scale = f" x{contribution.scale:g}" if contribution.scale != 1 else ""
    return f"[{contribution.detector} +{contribution.points:g}{scale}]"


def evidence(finding: Finding) -> tuple[str, ...]:
    """The Evidence lines: process, binary, command line, parent, remote endpoint, timing, then each contribution."""
    pids = ", ".join(map(str, finding.pids)) or "unknown"
    lines = [f"process: {finding.process_name} (pid {pids})"]
    if finding.process_path:
        sha = f", sha256 {finding.exe_sha256}" if finding.exe_sha256 else ""
        lines.append(f"binary: {finding.process_path}{sha}")
    if finding.command_line:
        lines.append(f"command line: {finding.command_line}")
    if finding.kind == "connections":
        lines.append(f"parent: {finding.parent}")
    hostname = f" ({finding.remote_hostname})" if finding.remote_hostname else ""
    over = f" over {'/'.join(finding.protocols)}" if finding.protocols else ""
    state = f" state {','.join(finding.states)}" if finding.states else ""
    label = "local service" if finding.direction == "inbound" else "remote endpoint"
    lines.append(f"{label}: {finding.destination}{hostname}{over}{state}")
    if finding.first_seen:
        last = finding.last_seen or finding.first_seen
        span = (last - finding.first_seen).total_seconds()
        lines.append(f"timing: {finding.connections} {finding.kind} between {finding.first_seen:%Y-%m-%d %H:%M:%S} "
                     f"and {last:%H:%M:%S} UTC ({span:.0f} s)")
    elif finding.kind == "queries":
        lines.append(f"timing: {finding.connections} DNS queries")
    lines.extend(f"{contribution_tag(c)} {contribution_text(c)}" for c in finding.contributions)
    return tuple(lines)


_GENERIC = "acquire the binary and memory of {name}{pid}, review its parent and persistence"


def recommended_action(finding: Finding) -> str:
    """Containment, investigation or monitoring, with the primary detector's own advice where it has one."""
    pid = f" pid {finding.pids[0]}" if finding.pids else ""
    specific = finding.action or _GENERIC.format(name=finding.process_name, pid=pid)
    name, host, destination = finding.process_name, finding.host, finding.destination
    if finding.risk == "Critical":
        blockable = finding.domain or (finding.remote_ip and finding.remote_ip not in ("0.0.0.0", "::"))
        block = f" and block {destination} at egress" if blockable else ""
        return f"Containment: isolate {host}{block} now; then {specific}."
    if finding.risk == "High":
        return f"Investigation (urgent): {specific}; contain {host} if confirmed."
    if finding.risk == "Medium":
        return f"Investigation: confirm whether {name} should reach {destination}; {specific}."
    return f"Monitoring: watch {name} on {host} for repeat connections to {destination}."
