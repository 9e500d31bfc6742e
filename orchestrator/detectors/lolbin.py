"""Living-off-the-land binaries and interpreters talking out, and binaries running from odd places.

Neither is malicious by itself (admins run curl and python), so these are context: they raise a pair's score
and name a technique only when no behavioural detector fired.
"""

from __future__ import annotations

from typing import Any, ClassVar

from orchestrator.detectors.base import Context, Detector, values_table

# name -> (technique, why it matters)
LOLBINS: dict[str, tuple[str, str]] = {
    "rundll32.exe": ("T1218.011", "rundll32 proxies execution of DLL code"),
    "regsvr32.exe": ("T1218.010", "regsvr32 fetches and runs scriptlets (Squiblydoo)"),
    "mshta.exe": ("T1218.005", "mshta runs remote HTA script"),
    "certutil.exe": ("T1105", "certutil downloads files"),
    "bitsadmin.exe": ("T1197", "bitsadmin transfers files via BITS"),
    "msiexec.exe": ("T1218.007", "msiexec installs remote packages"),
    "installutil.exe": ("T1218.004", "InstallUtil proxies execution"),
    "regasm.exe": ("T1218.009", "RegAsm proxies execution"),
    "regsvcs.exe": ("T1218.009", "RegSvcs proxies execution"),
    "msbuild.exe": ("T1127.001", "MSBuild compiles and runs inline tasks"),
    "wmic.exe": ("T1047", "wmic runs remote XSL"),
    "cscript.exe": ("T1059.005", "script host talking out"),
    "wscript.exe": ("T1059.005", "script host talking out"),
    "powershell.exe": ("T1059.001", "PowerShell talking out"),
    "pwsh.exe": ("T1059.001", "PowerShell talking out"),
    "pwsh": ("T1059.001", "PowerShell talking out"),
    "cmd.exe": ("T1059.003", "cmd.exe holding a network connection"),
}
# Shells and network tools with a remote peer: reverse shells and ad-hoc tunnels.
SHELLS = {"bash", "sh", "dash", "zsh", "ksh", "nc", "ncat", "netcat", "socat", "telnet"}
# Interpreters talk out all day (pip, package managers, scripts): less context than a shell holding a socket.
INTERPRETERS = {"perl", "ruby", "php", "python", "python2", "python3", "lua", "awk", "gawk", "node"}
PYTHON_VERSIONED = r"python\d(\.\d+)?"
# RE2, matched against the lower-cased path.
ODD_DIRS = (r"^(/tmp/|/var/tmp/|/dev/shm/|/run/user/\d+/|/home/[^/]+/downloads/|/users/[^/]+/downloads/"
                      r"|[a-z]:\\users\\[^\\]+\\downloads\\|[a-z]:\\users\\[^\\]+\\appdata\\local\\temp\\"
                      r"|[a-z]:\\windows\\temp\\|[a-z]:\\programdata\\[^\\]+\.exe$|[a-z]:\\users\\public\\"
                      r"|[a-z]:\\\$recycle\.bin\\"
                      # an exe straight in Roaming or its Microsoft\\Windows folders: persistence, not an install
                      r"|[a-z]:\\users\\[^\\]+\\appdata\\roaming\\[^\\]+\.exe$"
                      r"|[a-z]:\\users\\[^\\]+\\appdata\\roaming\\microsoft\\windows\\[^\\]+\.exe$)")


class Lolbin(Detector):
    name: ClassVar[str] = "lolbin"
    technique: ClassVar[str] = "T1218"
    context: ClassVar[bool] = True
    priority: ClassVar[int] = 60
    explain: ClassVar[dict[str, str]] = {
        "lolbin": "{program}: {why}",
        "shell": "interpreter/shell {program} holds a connection to {destination}",
    }

    def query(self, ctx: Context) -> tuple[str, dict[str, Any]]:
        values_table(ctx.con, "lolbins", "name VARCHAR, technique VARCHAR, why VARCHAR",
                     ((name, technique, why) for name, (technique, why) in LOLBINS.items()))
        values_table(ctx.con, "shells", "name VARCHAR, weight DOUBLE",
                     [(n, 1.5) for n in sorted(SHELLS)] + [(n, 1.0) for n in sorted(INTERPRETERS)])
        sql = """
            WITH named AS (
                SELECT name FROM pair_names WHERE list_contains($names, name) OR regexp_full_match(name, $python))
            SELECT p.host, p.process_identity, p.destination, p.remote_ip, p.remote_port,
                   CASE WHEN l.name IS NOT NULL THEN 'lolbin' ELSE 'shell' END AS reason,
                   CASE WHEN l.name IS NOT NULL THEN 2.0 ELSE coalesce(sh.weight, 1.0) END AS weight,
                   coalesce(l.technique, 'T1059') AS technique,
                   MAP {'program': p.name, 'why': coalesce(l.why, ''), 'destination': p.destination} AS facts
            FROM (SELECT * FROM pairs SEMI JOIN named USING (name) WHERE protocol <> 'raw') p
            LEFT JOIN lolbins l ON l.name = p.name LEFT JOIN shells sh ON sh.name = p.name"""
        return sql, {"python": PYTHON_VERSIONED, "names": sorted({*LOLBINS, *SHELLS, *INTERPRETERS})}


class OddPath(Detector):
    name: ClassVar[str] = "odd_path"
    technique: ClassVar[str] = "T1071"
    context: ClassVar[bool] = True
    priority: ClassVar[int] = 70
    explain: ClassVar[dict[str, str]] = {
        "deleted": "binary {path} was deleted while running",
        "writable_dir": "binary runs from a writable temp/download location: {path}",
    }

    def query(self, ctx: Context) -> tuple[str, dict[str, Any]]:
        # the paths are tested once each (a list filter: DuckDB would push a WHERE below the DISTINCT onto every pair)
        sql = """
            WITH odd AS (
                SELECT unnest(list_filter(list(DISTINCT process_path), lambda p: ends_with(p, ' (deleted)')
                                          OR regexp_matches(lower(p), $odd))) AS process_path
                FROM pairs)
            SELECT host, process_identity, destination, remote_ip, remote_port,
                   CASE WHEN ends_with(process_path, ' (deleted)') THEN 'deleted' ELSE 'writable_dir' END
                       AS reason, 3.0 AS weight,
                   CASE WHEN ends_with(process_path, ' (deleted)') THEN 'T1070.004' ELSE 'T1036' END
                       AS technique,
                   MAP {'path': process_path} AS facts
            FROM pairs SEMI JOIN odd USING (process_path)"""
        return sql, {"odd": ODD_DIRS}
