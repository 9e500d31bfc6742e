"""Novelty against a baseline (T1071 context): a destination this program never used before, or never anyone.

Silent without a baseline (`--baseline`, or `baseline:` in the config). A pair already in the baseline is lowered
a little, not cleared: an implant present when the baseline was taken would otherwise hide in it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from orchestrator.baseline import DESTINATION_SQL, TABLE
from orchestrator.detectors.base import Context
from orchestrator.model import Signal

KNOWN_SCALE = 0.7
# Joined in DuckDB: only this hunt's pairs are looked up, however large the baseline.
_LOOKUP_SQL = f"""
WITH current AS (SELECT DISTINCT process_identity, {DESTINATION_SQL} AS destination FROM connections)
SELECT c.process_identity, c.destination, b.hosts, b.first_seen,
       c.destination IN (SELECT destination FROM base.{TABLE}) AS destination_known
FROM current c LEFT JOIN base.{TABLE} b USING (process_identity, destination)
"""


class Novelty:
    name: ClassVar[str] = "novelty"
    technique: ClassVar[str] = "T1071"

    def detect(self, ctx: Context) -> list[Signal]:
        if not ctx.config.baseline:
            return []
        seen = {(r["process_identity"], r["destination"]): r for r in ctx.store.query(_LOOKUP_SQL)}
        signals = []
        for pair in ctx.pairs:
            row = seen.get((pair.process_identity, pair.destination))
            if row is None:
                continue
            if row["hosts"] is not None:
                since = f"{row['first_seen']:%Y-%m-%d}" if row["first_seen"] else "an earlier collection"
                signal = pair.signal(self, 0.0, f"baseline: this pair was seen on {row['hosts']} host(s) since "
                                                f"{since} (lowered)", context=True)
                signals.append(replace(signal, scale=KNOWN_SCALE))
            elif row["destination_known"]:
                signals.append(pair.signal(self, 0.5, f"baseline: {pair.destination} is known, but never from "
                                                      "this program", context=True))
            else:
                signals.append(pair.signal(self, 1.0, f"baseline: no host ever reached {pair.destination} before",
                                           context=True))
        return signals
