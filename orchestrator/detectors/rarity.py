"""Fleet prevalence (T1071 context): how many hosts run this process identity against this destination.

In the spirit of RITA: a pair on at most 2 % of the hosts (at least one) raises the score, a pair on at least half
of them lowers it. The identity is the normalised path, never the pid. Below a few hosts prevalence says nothing
and this detector stays silent.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import ClassVar

from orchestrator.detectors.base import Context
from orchestrator.detectors.dns_exfil import registered_domain
from orchestrator.model import PairKey, Signal

COMMON_SCALE = 0.4


class Rarity:
    name: ClassVar[str] = "rarity"
    technique: ClassVar[str] = "T1071"

    def detect(self, ctx: Context) -> list[Signal]:
        fleet = ctx.fleet_size
        if fleet < ctx.config.min_fleet_for_prevalence:
            return []
        rare_max = max(1, math.floor(ctx.config.rare_share * fleet))
        pair_hosts: dict[tuple[str, str], set[str]] = defaultdict(set)
        dest_hosts: dict[str, set[str]] = defaultdict(set)
        for pair in ctx.pairs:
            pair_hosts[(pair.process_identity, pair.destination)].add(pair.host)
            dest_hosts[pair.destination].add(pair.host)
        for row in ctx.store.query("SELECT DISTINCT host, process_identity, query FROM dns"):
            domain = registered_domain(row["query"])
            pair_hosts[(row["process_identity"], domain)].add(row["host"])
            dest_hosts[domain].add(row["host"])
        signals = []
        for (identity, destination), hosts in pair_hosts.items():
            n = len(hosts)
            for host in hosts:
                key = PairKey(host, identity, destination)
                fact = (f"fleet prevalence: this process->destination pair on {n} of {fleet} hosts; "
                        f"destination contacted by {len(dest_hosts[destination])} of {fleet} hosts")
                if n <= rare_max:
                    signals.append(Signal(self.name, self.technique, key, 1.5, (fact,), context=True, hosts=n))
                elif n >= ctx.config.common_share * fleet:
                    signals.append(Signal(self.name, self.technique, key, 0.0, (fact + " (common: lowered)",),
                                          context=True, scale=COMMON_SCALE, hosts=n))
        return signals
