"""T1055 process injection, seen from the network: a program that never talks, talking.

Notepad, Calculator, Paint or `sleep` holding a connection is not that program's doing: something runs inside it
(an injected implant, a hollowed process). The list is drawn from public detection rules (Sigma's "network
connection from a suspicious program" family); prevalence adds the fleet's own evidence elsewhere.
"""

from __future__ import annotations

from typing import Any, ClassVar

from orchestrator.detectors.base import Context, Detector, values_table

SILENT_PROGRAMS = (
    "notepad.exe", "calc.exe", "calculator.exe", "mspaint.exe", "wordpad.exe", "write.exe", "charmap.exe",
    "regedit.exe", "snippingtool.exe", "magnify.exe", "osk.exe", "narrator.exe", "winver.exe", "dxdiag.exe",
    "cleanmgr.exe", "taskmgr.exe", "mmc.exe", "eventvwr.exe", "notepad++.exe", "werfault.exe", "dllhost.exe",
    "conhost.exe", "backgroundtaskhost.exe", "print.exe",
    # Linux: programs with no network code of their own
    "sleep", "cat", "less", "more", "tail", "head", "true", "false", "yes", "tee", "sort", "gzip", "xz",
)


class NeverTalk(Detector):
    name: ClassVar[str] = "never_talk"
    technique: ClassVar[str] = "T1055"
    priority: ClassVar[int] = 15
    action: ClassVar[str | None] = ("acquire the memory of the process (the injected code lives there), find what "
                                    "started or injected into it, block the peer")
    explain: ClassVar[dict[str, str]] = {
        "silent_program": "{program} never makes network connections, yet holds one to {destination}: code "
                          "injected into it, or a binary masquerading under its name",
    }

    def query(self, ctx: Context) -> tuple[str, dict[str, Any]]:
        values_table(ctx.con, "silent_programs", "name VARCHAR", ((n,) for n in SILENT_PROGRAMS))
        sql = """
            SELECT host, process_identity, destination, remote_ip, remote_port, 'silent_program' AS reason,
                   6.0 AS weight, MAP {'program': name, 'destination': destination} AS facts
            FROM pairs WHERE protocol <> 'raw' AND name IN (SELECT name FROM silent_programs)
              -- a socket credited by a guess (the process that exited as it closed) is no proof of injection
              AND owner_seen > 0"""
        return sql, {}
