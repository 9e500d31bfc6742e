"""T1059 reverse shells: a shell or interpreter whose stdin/stdout/stderr is a network socket.

A responder treats this as Critical on sight: nothing legitimate wires a shell's terminal to a TCP peer. The
collector says so per socket (``stdio``: fd 0-2 of the owner is this socket, or its parent's inherited socket). A
shell talking out from a service account (www-data, nginx, apache, postgres, IIS AppPool) is the web-shell /
SQL-injection follow-on and is Critical too, even when its stdio could not be checked.
"""

from __future__ import annotations

from typing import Any, ClassVar

from orchestrator.detectors.base import PAIR_PROCESS_JOIN, PAIR_USERNAME, Context, Detector

SHELLS = ("bash", "sh", "dash", "zsh", "ksh", "csh", "tcsh", "fish", "busybox", "ash", "nc", "ncat", "netcat",
          "nc.openbsd", "nc.traditional", "socat", "telnet", "cmd.exe", "powershell.exe", "pwsh.exe", "pwsh")
INTERPRETERS = ("python", "python2", "python3", "perl", "ruby", "php", "lua", "node", "awk", "gawk", "tclsh",
                "python.exe", "pythonw.exe", "perl.exe", "wscript.exe", "cscript.exe")
# Accounts services run as; an interactive shell of theirs talking out is the post-exploitation shape.
SERVICE_ACCOUNT = r"(?i)^(www-data|nginx|apache|apache2|httpd|http|nobody|postgres|mysql|tomcat\d*|jetty|" \
                  r"iis apppool\\.*|nt authority\\(network service|local service)|w3wp)$"
_VERSIONED = r"(python|perl|ruby|php)\d+(\.\d+)*"


class ReverseShell(Detector):
    name: ClassVar[str] = "reverse_shell"
    technique: ClassVar[str] = "T1059"
    priority: ClassVar[int] = 5
    action: ClassVar[str | None] = ("kill the shell and its parent, capture the parent service's logs (the "
                                    "exploited request), acquire memory, block the peer")
    explain: ClassVar[dict[str, str]] = {
        "stdio": "{program}'s stdin/stdout/stderr is a network socket to {destination}: a reverse shell",
        "service_user": "shell/interpreter {program} running as service account {user} talks out to {destination}",
    }

    def query(self, ctx: Context) -> tuple[str, dict[str, Any]]:
        sql = f"""
            WITH shell_names AS (
                SELECT name FROM pair_names WHERE list_contains($names, name) OR regexp_full_match(name, $versioned)
            ), shells AS (
                -- the few shell pairs first, then their users
                SELECT p.*, {PAIR_USERNAME} AS username
                FROM (SELECT * FROM pairs SEMI JOIN shell_names USING (name) WHERE protocol <> 'raw') p
                {PAIR_PROCESS_JOIN})
            SELECT host, process_identity, destination, remote_ip, remote_port,
                   CASE WHEN stdio THEN 'stdio' ELSE 'service_user' END AS reason,
                   CASE WHEN stdio AND regexp_matches(coalesce(username, ''), $service) THEN 10.0
                        WHEN stdio THEN 9.0 ELSE 7.5 END AS weight,
                   MAP {{'program': name, 'destination': destination, 'user': coalesce(username, '')}} AS facts
            FROM shells WHERE stdio OR regexp_matches(coalesce(username, ''), $service)"""
        return sql, {"versioned": _VERSIONED, "service": SERVICE_ACCOUNT, "names": sorted({*SHELLS, *INTERPRETERS})}
