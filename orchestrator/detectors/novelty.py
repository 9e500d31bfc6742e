"""Novelty against a baseline (T1071 context): a destination this program never used before, or never anyone.

Silent without a baseline (`--baseline`, or `baseline:` in the config). A pair already in the baseline is lowered
a little, not cleared: an implant present when the baseline was taken would otherwise hide in it. A statistic:
joined in DuckDB for the flagged pairs only, however large the baseline.
"""

from __future__ import annotations

from typing import Any, ClassVar

from orchestrator.baseline import TABLE
from orchestrator.detectors.base import Context, Detector

KNOWN_SCALE = 0.7


class Novelty(Detector):
    name: ClassVar[str] = "novelty"
    technique: ClassVar[str] = "T1071"
    statistic: ClassVar[bool] = True
    context: ClassVar[bool] = True
    priority: ClassVar[int] = 95
    explain: ClassVar[dict[str, str]] = {
        "known": "baseline: this pair was seen on {hosts} host(s) since {since} (lowered)",
        "new_for_program": "baseline: {destination} is known, but never from this program",
        "never_seen": "baseline: no host ever reached {destination} before",
    }

    def query(self, ctx: Context) -> tuple[str, dict[str, Any]] | None:
        if not ctx.config.baseline:
            return None
        sql = f"""
            SELECT c.host, c.process_identity, c.destination,
                   CASE WHEN b.hosts IS NOT NULL THEN 'known'
                        WHEN c.destination IN (SELECT destination FROM base.{TABLE}) THEN 'new_for_program'
                        ELSE 'never_seen' END AS reason,
                   CASE WHEN b.hosts IS NOT NULL THEN 0.0
                        WHEN c.destination IN (SELECT destination FROM base.{TABLE}) THEN 0.5 ELSE 1.0 END AS weight,
                   CASE WHEN b.hosts IS NOT NULL THEN $known_scale ELSE 1.0 END AS scale,
                   MAP {{'hosts': coalesce(b.hosts::VARCHAR, ''), 'destination': c.destination,
                        'since': coalesce(strftime(b.first_seen, '%Y-%m-%d'), 'an earlier collection')}} AS facts
            FROM (SELECT DISTINCT host, process_identity, destination FROM candidates) c
            LEFT JOIN base.{TABLE} b USING (process_identity, destination)"""
        return sql, {"known_scale": KNOWN_SCALE}
