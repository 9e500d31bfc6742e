"""T1046 Network Service Discovery: one process fanning out to many internal hosts or ports.

A connect scan leaves many distinct (address, port) targets behind one process and, where targets drop SYNs,
half-open SYN_SENT sockets. Servers answering many clients are not counted: only the side that connects out.
"""

from __future__ import annotations

from collections import defaultdict
from typing import ClassVar

from orchestrator.detectors.base import Context, Pair
from orchestrator.model import PairKey, Signal


class InternalScan:
    name: ClassVar[str] = "internal_scan"
    technique: ClassVar[str] = "T1046"

    def detect(self, ctx: Context) -> list[Signal]:
        by_process: dict[tuple[str, str], list[Pair]] = defaultdict(list)
        for pair in ctx.pairs:
            if pair.protocol == "tcp" and ctx.config.is_internal(pair.remote_ip):
                by_process[(pair.host, pair.process_identity)].append(pair)
        signals = []
        for (host, identity), pairs in by_process.items():
            ips = {p.remote_ip for p in pairs}
            ports = {p.remote_port for p in pairs}
            targets = len(pairs)
            half_open = sum(1 for p in pairs if "SYN_SENT" in p.states)
            if targets < ctx.config.scan_min_targets and half_open < ctx.config.scan_min_half_open:
                continue
            if targets < ctx.config.scan_min_targets // 2:
                continue
            points = 3.0 + min(2.0, targets / (2 * ctx.config.scan_min_targets)) \
                + (1.5 if half_open >= ctx.config.scan_min_half_open else 0.0)
            sample = sorted(ips)[:5]
            facts = (f"fan-out to {targets} internal targets: {len(ips)} hosts ({', '.join(sample)}"
                     f"{', ...' if len(ips) > 5 else ''}) on {len(ports)} ports",
                     f"{half_open} half-open (SYN_SENT) connections")
            destination = f"internal network ({len(ips)} hosts, {len(ports)} ports)"
            top = max(pairs, key=lambda p: p.connections)
            signals.append(Signal(self.name, self.technique, PairKey(host, identity, destination), round(points, 2),
                                  facts, remote_ip=None if len(ips) > 1 else top.remote_ip,
                                  remote_port=None if len(ports) > 1 else top.remote_port,
                                  covers=frozenset(p.destination for p in pairs)))
        return signals
