"""Fleet prevalence (T1071 context): how many hosts run this process identity against this destination.

In the spirit of RITA, and only for pairs another detector flagged (a statistic never makes a finding alone):

- rare: the pair is on at most 2 % of the hosts (at least one): raised; more when no other host of a fleet of
  20 or more reaches that destination at all;
- common: on at least half of the hosts: lowered;
- widespread: installed software doing the same on many hosts (at least ``widespread_share`` of the fleet), or a
  program's own backend (it reaches this destination from every host it runs on, three or more): lowered. Neither
  applies to a binary in a writable location (/tmp, Downloads, Temp...): a worm is widespread too.

The identity is the normalised path, never the pid. Below a few hosts prevalence says nothing and this detector
stays silent.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from orchestrator.detectors.base import Context, Detector
from orchestrator.detectors.lolbin import ODD_DIRS

COMMON_SCALE = 0.4
BACKEND_SCALE = 0.5
UNIQUE_MIN_FLEET = 20


class Rarity(Detector):
    name: ClassVar[str] = "rarity"
    technique: ClassVar[str] = "T1071"
    statistic: ClassVar[bool] = True
    context: ClassVar[bool] = True
    priority: ClassVar[int] = 90
    explain: ClassVar[dict[str, str]] = {
        "rare": "fleet prevalence: this process->destination pair on {hosts} of {fleet} hosts; destination "
                "contacted by {destination_hosts} of {fleet} hosts",
        "unique": "fleet prevalence: this process->destination pair on {hosts} of {fleet} hosts, and no other host "
                  "reaches the destination",
        "common": "fleet prevalence: this process->destination pair on {hosts} of {fleet} hosts; destination "
                  "contacted by {destination_hosts} of {fleet} hosts (common: lowered)",
        "widespread": "fleet prevalence: this program does this on {hosts} of {fleet} hosts, from an installed "
                      "location: the software's own behaviour (lowered)",
        "own_backend": "fleet prevalence: this program reaches this destination from every host it runs on "
                       "({hosts} of {program_hosts}): its own backend (lowered)",
    }

    def query(self, ctx: Context) -> tuple[str, dict[str, Any]] | None:
        if not ctx.fleet:
            return None
        sql = """
            WITH wanted AS (SELECT DISTINCT destination FROM candidates),
            programs_wanted AS (SELECT DISTINCT process_identity FROM candidates),
            seen AS (
                -- (UNION ALL: the counts below are of distinct hosts anyway)
                SELECT host, process_identity, destination FROM pairs SEMI JOIN wanted USING (destination)
                UNION ALL SELECT host, process_identity, domain FROM queries
                WHERE domain IN (SELECT destination FROM wanted)
                UNION ALL SELECT host, process_identity, destination FROM services SEMI JOIN wanted
                    USING (destination)
            ), pair_hosts AS (
                SELECT process_identity, destination, count(DISTINCT host) AS hosts FROM seen GROUP BY ALL
            ), destination_hosts AS (
                SELECT destination, count(DISTINCT host) AS destination_hosts FROM seen GROUP BY ALL
            ), program_hosts AS (
                SELECT process_identity, count(DISTINCT host) AS program_hosts FROM (
                    SELECT host, process_identity FROM pair_programs SEMI JOIN programs_wanted USING (process_identity)
                    UNION ALL SELECT host, process_identity FROM services SEMI JOIN programs_wanted
                        USING (process_identity)
                    UNION ALL SELECT host, process_identity FROM queries SEMI JOIN programs_wanted
                        USING (process_identity)) GROUP BY ALL
            ), judged AS (
                SELECT c.host, c.process_identity, c.destination, ph.hosts, dh.destination_hosts, g.program_hosts,
                       CASE WHEN ph.hosts <= $rare_max AND dh.destination_hosts = 1 AND $fleet_size >= $unique_fleet
                                 THEN 'unique'
                            WHEN ph.hosts >= $common_share * $fleet_size THEN 'common'
                            WHEN regexp_matches(lower(c.process_identity), $odd) THEN
                                 CASE WHEN ph.hosts <= $rare_max THEN 'rare' END
                            WHEN ph.hosts >= greatest($min_fleet, $widespread_share * $fleet_size) THEN 'widespread'
                            WHEN ph.hosts = g.program_hosts AND ph.hosts >= $min_fleet THEN 'own_backend'
                            WHEN ph.hosts <= $rare_max THEN 'rare' END AS reason
                FROM candidates c
                JOIN pair_hosts ph USING (process_identity, destination)
                JOIN destination_hosts dh USING (destination)
                JOIN program_hosts g USING (process_identity)
            )
            SELECT host, process_identity, destination, hosts, reason,
                   CASE reason WHEN 'unique' THEN 2.5 WHEN 'rare' THEN 1.5 ELSE 0.0 END AS weight,
                   CASE reason WHEN 'common' THEN $common_scale WHEN 'widespread' THEN $common_scale
                               WHEN 'own_backend' THEN $backend_scale ELSE 1.0 END AS scale,
                   MAP {'hosts': hosts::VARCHAR, 'fleet': $fleet_size::VARCHAR,
                        'destination_hosts': destination_hosts::VARCHAR,
                        'program_hosts': program_hosts::VARCHAR} AS facts
            FROM judged WHERE reason IS NOT NULL"""
        return sql, {"rare_max": max(1, math.floor(ctx.config.rare_share * ctx.fleet_size)),
                     "common_scale": COMMON_SCALE, "backend_scale": BACKEND_SCALE,
                     "common_share": ctx.config.common_share, "widespread_share": ctx.config.widespread_share,
                     "min_fleet": ctx.config.min_fleet_for_prevalence, "unique_fleet": UNIQUE_MIN_FLEET,
                     "fleet_size": ctx.fleet_size, "odd": ODD_DIRS}
