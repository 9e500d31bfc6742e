"""Living-off-the-land binaries and interpreters talking out, and binaries running from odd places.

Neither is malicious by itself (admins run curl and python), so these are context: they raise a pair's score
and name a technique only when no behavioural detector fired.
"""

from __future__ import annotations

import re
from typing import ClassVar

from orchestrator.detectors.base import Context, Pair
from orchestrator.model import Signal

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
SHELLS = {"bash", "sh", "dash", "zsh", "ksh", "nc", "ncat", "netcat", "socat", "telnet", "perl", "ruby", "php",
          "python", "python2", "python3", "lua", "awk", "gawk", "node"}
_PYTHON_VERSIONED = re.compile(r"^python\d(\.\d+)?$")
ODD_DIRS = re.compile(r"^(/tmp/|/var/tmp/|/dev/shm/|/run/user/\d+/|/home/[^/]+/downloads/|/users/[^/]+/downloads/"
                      r"|[a-z]:\\users\\[^\\]+\\downloads\\|[a-z]:\\users\\[^\\]+\\appdata\\local\\temp\\"
                      r"|[a-z]:\\windows\\temp\\|[a-z]:\\programdata\\[^\\]+\.exe$|[a-z]:\\users\\public\\"
                      r"|[a-z]:\\\$recycle\.bin\\)", re.IGNORECASE)


class Lolbin:
    name: ClassVar[str] = "lolbin"
    technique: ClassVar[str] = "T1218"

    def detect(self, ctx: Context) -> list[Signal]:
        signals = []
        for pair in ctx.pairs:
            if pair.protocol == "raw":
                continue
            signal = self._lolbin(pair) or self._shell(pair)
            if signal:
                signals.append(signal)
        return signals

    def _lolbin(self, pair: Pair) -> Signal | None:
        hit = LOLBINS.get(pair.name)
        if hit is None:
            return None
        technique, why = hit
        return pair.signal(self, 2.0, f"{pair.name}: {why}", context=True, technique=technique)

    def _shell(self, pair: Pair) -> Signal | None:
        if pair.name not in SHELLS and not _PYTHON_VERSIONED.match(pair.name):
            return None
        return pair.signal(self, 1.5, f"interpreter/shell {pair.name} holds a connection to {pair.destination}",
                           context=True, technique="T1059")


class OddPath:
    name: ClassVar[str] = "odd_path"
    technique: ClassVar[str] = "T1071"

    def detect(self, ctx: Context) -> list[Signal]:
        signals = []
        for pair in ctx.pairs:
            path = pair.process_path or ""
            if path.endswith(" (deleted)"):
                signals.append(pair.signal(self, 3.0, f"binary {path} was deleted while running", context=True,
                                           technique="T1070.004"))
            elif ODD_DIRS.match(path.lower()):
                signals.append(pair.signal(self, 3.0, f"binary runs from a writable temp/download location: {path}",
                                           context=True, technique="T1036"))
        return signals
