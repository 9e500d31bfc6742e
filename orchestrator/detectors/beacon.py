"""T1071 beaconing: regular intervals between one process's connections to one destination.

RITA-style: Bowley skewness and median absolute deviation of the intervals between connection starts, plus how
many intervals sit near the median (histogram regularity). Jitter of +/-20 % still scores well; intervals that
are whole multiples of the period (a missed sample, a skipped check-in) are folded back onto the period first.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import ClassVar

from orchestrator.detectors.base import Context, endpoint
from orchestrator.model import PairKey, Signal

STARTS_SQL = """
SELECT host, process_identity, protocol, remote_ip, remote_port,
       list(DISTINCT epoch(first_seen) ORDER BY epoch(first_seen)) AS starts
FROM connections
WHERE first_seen IS NOT NULL AND protocol <> 'raw'
GROUP BY ALL
HAVING count(DISTINCT first_seen) >= ?
"""
MIN_SCORE = 0.7
# Intervals shorter than this are one burst, not two check-ins.
MIN_INTERVAL_S = 0.2


@dataclass(frozen=True)
class BeaconStats:
    connections: int
    period: float
    mad: float
    skew: float
    near_median: float
    folded: int
    score: float


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 4:
        mid = statistics.median(values)
        return min(values), mid, max(values)
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def beacon_stats(starts: list[float]) -> BeaconStats | None:
    """Score how regular a series of connection start times is (1.0 = a metronome)."""
    raw = [b - a for a, b in zip(starts, starts[1:]) if b - a >= MIN_INTERVAL_S]
    if len(raw) < 3:
        return None
    period = statistics.median(raw)
    intervals, folded = [], 0
    for d in raw:
        k = round(d / period)
        if k >= 2 and abs(d / period - k) <= 0.25 * k:
            intervals.append(d / k)
            folded += 1
        else:
            intervals.append(d)
    q1, q2, q3 = _quartiles(intervals)
    skew = 0.0 if q3 == q1 else (q1 + q3 - 2 * q2) / (q3 - q1)
    mad = statistics.median(abs(d - q2) for d in intervals)
    near = sum(1 for d in intervals if abs(d - q2) <= 0.25 * q2) / len(intervals)
    # Skew only means something when the spread does: with the quartiles within a few tenths of the period,
    # sampling at whole ticks (5.998 / 6.000 / 6.996 s) swings Bowley's skew between -1 and +1 while the timing
    # is as regular as a beacon gets. So skew costs in proportion to the spread, fully from an IQR of half the period.
    spread = min(1.0, (q3 - q1) / (0.5 * q2)) if q2 > 0 else 1.0
    skew_score = 1 - min(1.0, abs(skew)) * spread
    # +/-20 % jitter gives a MAD near 10 % of the period, 20 % once sampled at whole ticks; random traffic 60 %+.
    mad_score = max(0.0, 1 - mad / (0.75 * q2)) if q2 > 0 else 0.0
    # Folding hides missed check-ins, but a series that is mostly gaps is a weaker claim.
    fold_penalty = 0.25 * folded / len(intervals)
    score = max(0.0, (skew_score + mad_score + near) / 3 - fold_penalty)
    return BeaconStats(len(starts), q2, mad, skew, near, folded, round(score, 3))


class Beacon:
    name: ClassVar[str] = "beacon"
    technique: ClassVar[str] = "T1071"

    def detect(self, ctx: Context) -> list[Signal]:
        kept = {p.key for p in ctx.pairs}
        signals = []
        for row in ctx.store.query(STARTS_SQL, [ctx.config.beacon_min_connections]):
            port = row["remote_port"]
            ip = row["remote_ip"]
            key = PairKey(row["host"], row["process_identity"], endpoint(ip, port, row["protocol"]))
            if key not in kept:
                continue
            stats = beacon_stats([float(s) for s in row["starts"]])
            if stats is None or stats.score < MIN_SCORE:
                continue
            first = datetime.fromtimestamp(row["starts"][0], tz=timezone.utc).strftime("%H:%M:%S")
            facts = (f"beacon: {stats.connections} connections every {stats.period:.1f} s "
                     f"(MAD {stats.mad:.2f} s, Bowley skew {stats.skew:+.2f}, {stats.near_median:.0%} within 25% of "
                     f"the period{f', {stats.folded} missed check-ins folded' if stats.folded else ''}; "
                     f"regularity {stats.score:.2f}) since {first} UTC",)
            signals.append(Signal(self.name, self.technique, key, round(4.0 * stats.score, 2), facts,
                                  remote_ip=ip, remote_port=port))
        return signals
