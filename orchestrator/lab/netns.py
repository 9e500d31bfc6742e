"""Build and tear down the lab's namespaces with ``ip``: hosts on a bridged LAN, a router, two server namespaces.

Every link is created with both ends already inside lab namespaces (``ip link add ... netns``), so nothing the lab
builds ever has an interface, an address or a route in the root namespace.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.lab import plan

NETNS_ETC = Path("/etc/netns")
NETNS_RUN = Path("/run/netns")
LAB_PREFIX = "chlab-"


class LabError(RuntimeError):
    """The lab could not be built or run; the message says which step."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def in_ns(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise LabError(f"[{ns}] {' '.join(argv)}: {proc.stderr.strip()}")
    return proc


def list_namespaces(prefix: str = LAB_PREFIX) -> list[str]:
    out = ip("netns", "list", check=False).stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.startswith(prefix))


def namespace_pids(ns: str) -> list[int]:
    out = ip("netns", "pids", ns, check=False).stdout
    return [int(x) for x in out.split() if x.isdigit()]


@dataclass
class Topology:
    """The namespaces of one lab run; ``build`` creates them, ``destroy`` removes them (idempotent)."""

    prefix: str
    hosts: list[str]
    created: list[str] = field(default_factory=list)

    def ns(self, name: str) -> str:
        return f"{self.prefix}{name}"

    @property
    def core(self) -> str:
        return self.ns("core")

    @property
    def srv(self) -> str:
        return self.ns("srv")

    @property
    def inet(self) -> str:
        return self.ns("inet")

    def _add_ns(self, name: str) -> str:
        ns = self.ns(name)
        ip("netns", "add", ns)
        self.created.append(ns)
        ip("-n", ns, "link", "set", "lo", "up")
        # Each namespace's processes resolve through the lab resolver: ip netns exec bind-mounts this file.
        etc = NETNS_ETC / ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(f"nameserver {plan.RESOLVER}\noptions timeout:1 attempts:2\n")
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {name}\n")
        return ns

    def _link(self, a: str, a_if: str, b: str, b_if: str) -> None:
        # Both ends are born inside lab namespaces; the root namespace never holds either.
        ip("-n", a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b)
        ip("-n", a, "link", "set", a_if, "up")
        ip("-n", b, "link", "set", b_if, "up")

    def build(self) -> None:
        core = self._add_ns("core")
        in_ns(core, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        ip("-n", core, "link", "add", "br-lan", "type", "bridge")
        ip("-n", core, "link", "set", "br-lan", "up")
        ip("-n", core, "addr", "add", f"{plan.GATEWAY}/{plan.LAN_PREFIX}", "dev", "br-lan")
        ip("-n", core, "addr", "add", f"{plan.RESOLVER}/{plan.LAN_PREFIX}", "dev", "br-lan")
        for index, host in enumerate(self.hosts):
            hns = self._add_ns(host)
            port = f"p-{host}"
            self._link(core, port, hns, "eth0")
            ip("-n", core, "link", "set", port, "master", "br-lan")
            ip("-n", hns, "addr", "add", f"{plan.host_ip(index)}/{plan.LAN_PREFIX}", "dev", "eth0")
            ip("-n", hns, "route", "add", "default", "via", plan.GATEWAY)
        self._build_server_ns("srv", plan.CORE_SRV, plan.SRV_ADDRESSES, (plan.SERVER_NET,))
        self._build_server_ns("inet", plan.CORE_INET, plan.INET_ADDRESSES, plan.INTERNET_NETS)
        # A firewalled segment: SYNs to it vanish, so a scanner's sockets linger half-open in SYN_SENT.
        ip("-n", core, "route", "add", "blackhole", plan.FILTERED_NET)

    def _build_server_ns(self, name: str, link: tuple[str, str], addresses: tuple[str, ...],
                         routed: tuple[str, ...]) -> None:
        core, sns = self.core, self._add_ns(name)
        self._link(core, f"to-{name}", sns, "eth0")
        ip("-n", core, "addr", "add", f"{link[0]}/30", "dev", f"to-{name}")
        ip("-n", sns, "addr", "add", f"{link[1]}/30", "dev", "eth0")
        ip("-n", sns, "route", "add", "default", "via", link[0])
        # The servers' addresses live on lo (no dummy module needed); the router sends their ranges here.
        for addr in addresses:
            ip("-n", sns, "addr", "add", f"{addr}/32", "dev", "lo")
        for net in routed:
            ip("-n", core, "route", "add", net, "via", link[1])

    def destroy(self) -> None:
        for ns in reversed(self.created):
            remove_namespace(ns)
        self.created.clear()


def remove_namespace(ns: str) -> None:
    """Delete a namespace and its /etc/netns files; its links go with it."""
    if not ns.startswith(LAB_PREFIX):
        raise LabError(f"refusing to remove a namespace that is not the lab's: {ns}")
    ip("netns", "del", ns, check=False)
    shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)
