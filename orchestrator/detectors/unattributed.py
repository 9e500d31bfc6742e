"""The note scoring adds when sockets nobody owned fold into the process talking to the same destination.

Not a query of its own (scoring writes these rows); declared here so that its metadata and wording live where every
other detector's do.
"""

from __future__ import annotations

from typing import Any, ClassVar

from orchestrator.detectors.base import Context, Detector


class Unattributed(Detector):
    name: ClassVar[str] = "unattributed"
    technique: ClassVar[str] = ""
    statistic: ClassVar[bool] = True
    context: ClassVar[bool] = True
    priority: ClassVar[int] = 99
    explain: ClassVar[dict[str, str]] = {
        "orphans": "more connections to this destination had no owner when sampled (closed, TIME_WAIT): folded in "
                   "here",
    }

    def query(self, ctx: Context) -> tuple[str, dict[str, Any]] | None:
        return None
