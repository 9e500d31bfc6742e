"""Remove the leftovers of a lab run that could not tear itself down (killed with SIGKILL, machine trouble)."""

from __future__ import annotations

from orchestrator.lab import binaries
from orchestrator.lab.netns import LAB_PREFIX, NETNS_ETC, list_namespaces, namespace_pids, remove_namespace
from orchestrator.lab.procs import kill_pids


def clean(prefix: str = LAB_PREFIX) -> list[str]:
    """Kill processes in lab namespaces, delete the namespaces, their /etc/netns files and the lab's binaries."""
    if not prefix.startswith(LAB_PREFIX):
        raise ValueError(f"a lab prefix starts with {LAB_PREFIX}")
    namespaces = list_namespaces(prefix)
    for ns in namespaces:
        kill_pids(namespace_pids(ns))
    for ns in namespaces:
        remove_namespace(ns)
    if NETNS_ETC.is_dir():
        for stale in NETNS_ETC.glob(f"{prefix}*"):
            remove_namespace(stale.name)
    binaries.remove_all()
    return namespaces
