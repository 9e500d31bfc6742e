"""The lab's network never touches the root namespace, and the lab tears down on failure and on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.lab import plan
from orchestrator.lab.netns import LabError, Topology, in_ns, ip, list_namespaces
from orchestrator.lab.runner import Lab, LabConfig, plan_prefix
from tests.lab.conftest import needs_agent, needs_netns

pytestmark = [pytest.mark.netns, needs_netns]


# What identifies a route (not its counters or expiry timers, which change on their own).
ROUTE_KEYS = ("type", "dst", "gateway", "dev", "table", "protocol", "scope", "prefsrc", "metric")


def root_view() -> tuple[set[str], set[str], set[tuple[object, ...]]]:
    """The root namespace's links, addresses and routes (IPv4 and IPv6, every table)."""
    links = {link["ifname"] for link in json.loads(ip("-j", "link", "show").stdout)}
    addrs = {a["local"] for link in json.loads(ip("-j", "addr", "show").stdout) for a in link.get("addr_info", [])}
    routes = {tuple(r.get(k) for k in ROUTE_KEYS) for family in ("-4", "-6")
              for r in json.loads(ip("-j", family, "route", "show", "table", "all").stdout)}
    return links, addrs, routes


def test_topology_lives_only_in_lab_namespaces() -> None:
    before = root_view()
    topo = Topology(plan_prefix(), plan.host_names(6))
    try:
        topo.build()
        links, addrs, routes = root_view()
        # Differences, not absolute rules: a host may already route or hold a lab range for its own reasons;
        # what matters is that building the lab changed nothing in the root namespace.
        assert links == before[0], "the lab added an interface to the root namespace"
        assert addrs == before[1], "the lab added an address to the root namespace"
        assert routes == before[2], f"the lab changed root-namespace routes: {routes ^ before[2]}"
        # The router has no way out: anything not for the lab is unreachable, not forwarded.
        assert "default" not in ip("-n", topo.core, "route", "show").stdout
        assert ip("-n", topo.core, "route", "get", "192.0.2.1", check=False).returncode != 0
        # Inside, the fleet works: a host reaches the internet namespace through the router.
        host = topo.ns("ws01")
        assert in_ns(host, "ip", "route", "get", plan.C2_SERVER).stdout.split()[2] == plan.GATEWAY
        assert set(list_namespaces(topo.prefix)) == set(topo.created)
    finally:
        topo.destroy()
    assert list_namespaces(topo.prefix) == []
    assert root_view() == before


@needs_agent
def test_failure_mid_run_tears_everything_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Lab, seconds: float) -> list[object]:
        raise LabError("collector start failed (test)")

    monkeypatch.setattr(Lab, "_start_collectors", boom)
    lab = Lab(LabConfig(minutes=1, hosts=6, out=tmp_path))
    with pytest.raises(LabError), lab:
        lab.run()
    assert list_namespaces(lab.prefix) == []
    assert not Path("/tmp/.svc/svc-scan").exists() and not Path("/opt/connhunt-lab").exists()
    assert all(s.popen.poll() is not None for s in lab.procs.spawned)


@needs_agent
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_signal_tears_everything_down(tmp_path: Path, sig: signal.Signals) -> None:
    code = ("import sys; from pathlib import Path; from orchestrator.lab.runner import LabConfig, run_lab; "
            f"run_lab(LabConfig(minutes=2, hosts=6, out=Path({str(tmp_path)!r})))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "role processes running" not in _read(tmp_path / "lab.log"):
            time.sleep(0.5)
        prefix = _read(tmp_path / "lab.log").split("lab ", 1)[1].split(":", 1)[0]
        assert list_namespaces(prefix), "the lab did not come up"
        proc.send_signal(sig)
        assert proc.wait(30) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list_namespaces(prefix) == []
    assert "teardown" in _read(tmp_path / "lab.log")


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_clean_removes_leftovers() -> None:
    from orchestrator.lab.clean import clean

    prefix = plan_prefix()
    topo = Topology(prefix, plan.host_names(6))
    topo.build()  # then "crash": nobody calls destroy()
    assert sorted(clean(prefix)) == sorted(topo.created)
    assert list_namespaces(prefix) == [] and not list(Path("/etc/netns").glob(f"{prefix}*"))


def test_refuses_foreign_namespace() -> None:
    from orchestrator.lab.netns import remove_namespace

    with pytest.raises(LabError):
        remove_namespace("not-the-lab")
    assert os.path.exists("/proc")  # nothing else touched
