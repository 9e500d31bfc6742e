"""T1496 Resource Hijacking: a cryptominer talking to a mining pool.

Signals: stratum URLs or miner flags in the command line (the strongest tell), stratum pool ports, pool-like
host names (from the connection or from DNS answers), and one long-lived connection to the pool.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import ClassVar

from orchestrator.detectors.base import Context, Pair
from orchestrator.model import Signal

POOL_PORTS = {3333, 3334, 3335, 3336, 3357, 4444, 5555, 5556, 5588, 6666, 7777, 8008, 9000, 9999, 10001, 10128,
              10343, 13333, 14433, 14444, 15555, 17777, 20535, 20580, 45560, 45700}
_CMDLINE = re.compile(r"stratum\d?\+(?:tcp|ssl|tls)://|--donate-level|--coin[= ]|--algo[= ](?:rx|cn|kawpow|ethash)"
                      r"|\bxmrig\b|\bcpuminer\b|\bxmr-stak\b|\bnanominer\b|\bnbminer\b|\bt-rex\b|\bethminer\b",
                      re.IGNORECASE)
_POOL_NAME = re.compile(r"(?:^|[.-])(?:pool|mine|mining|xmr|monero|nicehash|minexmr|supportxmr|nanopool|2miners"
                        r"|f2pool|hashvault|c3pool|moneroocean|ethermine|herominers|unmineable|viabtc|antpool"
                        r"|slushpool|miningpoolhub|zpool|prohashing)(?:[.-]|\d|$)", re.IGNORECASE)
LONG_LIVED = timedelta(minutes=1)


class Cryptominer:
    name: ClassVar[str] = "cryptominer"
    technique: ClassVar[str] = "T1496"

    def detect(self, ctx: Context) -> list[Signal]:
        names_by_ip = _names_from_dns(ctx)
        signals = []
        for pair in ctx.pairs:
            if pair.protocol != "tcp":
                continue
            facts, points = self._score(pair, names_by_ip.get((pair.host, pair.remote_ip), set()))
            if points >= 2.0:
                signals.append(pair.signal(self, points, *facts))
        return signals

    def _score(self, pair: Pair, dns_names: set[str]) -> tuple[list[str], float]:
        facts: list[str] = []
        points = 0.0
        cmd_hit = _CMDLINE.search(pair.command_line or "")
        if cmd_hit:
            points += 5.0
            facts.append(f"miner marker {cmd_hit.group(0)!r} in the command line")
        if pair.remote_port in POOL_PORTS:
            points += 2.0 if cmd_hit or pair.remote_port not in (4444, 5555, 6666, 9000, 9999) else 0.5
            facts.append(f"remote port {pair.remote_port} is a stratum pool port")
        names = {n for n in dns_names | {pair.remote_hostname or ""} if n and _POOL_NAME.search(n)}
        if names:
            points += 3.0
            facts.append(f"remote resolves from pool-like name(s) {', '.join(sorted(names))}")
        if points and pair.first_seen and pair.last_seen and pair.connections <= 2 \
                and pair.last_seen - pair.first_seen >= LONG_LIVED:
            points += 1.0
            minutes = (pair.last_seen - pair.first_seen).total_seconds() / 60
            facts.append(f"one long-lived connection ({minutes:.1f} min)")
        return facts, points


def _names_from_dns(ctx: Context) -> dict[tuple[str, str], set[str]]:
    """(host, answer ip) -> query names, so a connection to an IP can be tied to the name looked up."""
    names: dict[tuple[str, str], set[str]] = {}
    for row in ctx.store.query("SELECT DISTINCT host, query, unnest(answers) AS ip FROM dns"):
        names.setdefault((row["host"], row["ip"]), set()).add(row["query"])
    return names
