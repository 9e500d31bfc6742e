"""Fleet prevalence (T1071 context): how many hosts run this process identity against this destination.

In the spirit of RITA: a pair on at most 2 % of the hosts (at least one) raises the score, a pair on at least half
of them lowers it. The identity is the normalised path, never the pid. Below a few hosts prevalence says nothing
and this detector stays silent. A statistic: it is computed only for the pairs another detector flagged.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from orchestrator.detectors.base import Context, Detector

COMMON_SCALE = 0.4


class Rarity(Detector):
    name: ClassVar[str] = "rarity"
    technique: ClassVar[str] = "T1071"
    statistic: ClassVar[bool] = True
    context: ClassVar[bool] = True
    priority: ClassVar[int] = 90
    explain: ClassVar[dict[str, str]] = {
        "rare": "fleet prevalence: this process->destination pair on {hosts} of {fleet} hosts; destination "
                "contacted by {destination_hosts} of {fleet} hosts",
        "common": "fleet prevalence: this process->destination pair on {hosts} of {fleet} hosts; destination "
                  "contacted by {destination_hosts} of {fleet} hosts (common: lowered)",
    }

    def query(self, ctx: Context) -> tuple[str, dict[str, Any]] | None:
        if not ctx.fleet:
            return None
        sql = """
            WITH wanted AS (SELECT DISTINCT destination FROM candidates),
            seen AS (
                SELECT host, process_identity, destination FROM pairs SEMI JOIN wanted USING (destination)
                UNION SELECT host, process_identity, domain FROM queries
                WHERE domain IN (SELECT destination FROM wanted)
                UNION SELECT host, process_identity, destination FROM services SEMI JOIN wanted USING (destination)
            ), pair_hosts AS (
                SELECT process_identity, destination, count(DISTINCT host) AS hosts FROM seen GROUP BY ALL
            ), destination_hosts AS (
                SELECT destination, count(DISTINCT host) AS destination_hosts FROM seen GROUP BY ALL
            )
            SELECT c.host, c.process_identity, c.destination, ph.hosts,
                   CASE WHEN ph.hosts <= $rare_max THEN 'rare' ELSE 'common' END AS reason,
                   CASE WHEN ph.hosts <= $rare_max THEN 1.5 ELSE 0.0 END AS weight,
                   CASE WHEN ph.hosts <= $rare_max THEN 1.0 ELSE $common_scale END AS scale,
                   MAP {'hosts': ph.hosts::VARCHAR, 'fleet': $fleet::VARCHAR,
                        'destination_hosts': dh.destination_hosts::VARCHAR} AS facts
            FROM candidates c
            JOIN pair_hosts ph USING (process_identity, destination)
            JOIN destination_hosts dh USING (destination)
            WHERE ph.hosts <= $rare_max OR ph.hosts >= $common_share * $fleet"""
        return sql, {"rare_max": max(1, math.floor(ctx.config.rare_share * ctx.fleet_size)),
                     "common_scale": COMMON_SCALE, "common_share": ctx.config.common_share,
                     "fleet": ctx.fleet_size}
