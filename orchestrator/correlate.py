"""Correlation: link findings that belong to one story, so the report shows one chain instead of many lines.

Two findings are linked when they share a host and a process tree (same program, or one is the other's parent),
or when they reach the same remote address or domain from different hosts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from orchestrator.model import Chain, Finding
from orchestrator.schema import UNKNOWN_PROCESS


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(b)] = self.find(a)


def _edges(findings: Sequence[Finding]) -> list[tuple[int, int, str]]:
    """Links between findings, found through buckets (host, destination) rather than comparing every pair."""
    edges: list[tuple[int, int, str]] = []
    by_host: dict[str, list[int]] = defaultdict(list)
    by_destination: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(findings):
        by_host[f.host].append(i)
        for dest in {f.domain, f.remote_ip} - {None, ""}:
            by_destination[str(dest)].append(i)
    for host, idx in by_host.items():
        for n, i in enumerate(idx):
            a = findings[i]
            for j in idx[n + 1:]:
                b = findings[j]
                # Sockets whose owner could not be seen share the placeholder identity, not a process.
                if a.process_identity == b.process_identity != UNKNOWN_PROCESS:
                    edges.append((i, j, f"same process {a.process_name} on {host}"))
                elif set(a.pids) & set(b.ppids) or set(b.pids) & set(a.ppids):
                    edges.append((i, j, f"same process tree on {host}"))
    for dest, idx in by_destination.items():
        if len({findings[i].host for i in idx}) > 1:
            edges.extend((idx[0], j, f"same destination {dest} from several hosts") for j in idx[1:])
    return edges


def correlate(findings: Sequence[Finding]) -> tuple[list[Finding], list[Chain]]:
    """Findings with their chain id set, and the chains (two or more findings each), most severe first."""
    links = _UnionFind(len(findings))
    edges = _edges(findings)
    for i, j, _ in edges:
        links.union(i, j)
    members: dict[int, list[int]] = defaultdict(list)
    reasons: dict[int, set[str]] = defaultdict(set)
    for i in range(len(findings)):
        members[links.find(i)].append(i)
    for i, _, reason in edges:
        reasons[links.find(i)].add(reason)
    chains: list[Chain] = []
    chain_of: dict[int, str] = {}
    for root, idx in sorted(members.items(), key=lambda kv: min(kv[1])):
        if len(idx) < 2:
            continue
        chain_id = f"C{len(chains) + 1}"
        chains.append(Chain(chain_id, "; ".join(sorted(reasons[root])[:3]), tuple(findings[i].hunt_id for i in idx)))
        for i in idx:
            chain_of[i] = chain_id
    return [replace(f, chain=chain_of.get(i)) for i, f in enumerate(findings)], chains
