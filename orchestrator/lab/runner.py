"""Run the lab: build the fleet, start servers, collectors and roles, wait, collect, and always tear down.

``run_lab`` is the one entry point (the CLI, the benchmark and the tests call it). Teardown runs on normal exit,
on an exception, on Ctrl-C / SIGTERM (turned into an exception) and, as a last resort, at interpreter exit.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import secrets
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.lab import binaries, groundtruth, plan, scenarios
from orchestrator.lab.netns import LabError, Topology, namespace_pids
from orchestrator.lab.procs import ProcessRegistry, Spawned, kill_pids

ROLES_DIR = Path(__file__).resolve().parent / "roles"
REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_MINUTES = 30.0
COLLECTOR_GRACE = 4.0  # the collectors outlive the traffic by this much, so the last connections are seen


@dataclass(frozen=True)
class LabConfig:
    minutes: float = 3.0
    hosts: int = 8
    out: Path = Path("lab-out")
    interval: float = 1.0
    seed: int = 0
    collect: bool = True


@dataclass
class LabResult:
    prefix: str
    out: Path
    hosts: list[str]
    agent_files: list[Path]
    ground_truth: Path
    log: Path
    records: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> dict[str, object]:
        return {"prefix": self.prefix, "out": str(self.out), "hosts": self.hosts,
                "agent_files": [str(p) for p in self.agent_files], "ground_truth": str(self.ground_truth),
                "log": str(self.log), "records": self.records, "seconds": round(self.seconds, 1)}


class _Terminated(Exception):
    """SIGTERM, turned into an exception so that teardown runs."""


class Lab:
    """One lab run. Use as a context manager: leaving it (however) tears everything down."""

    def __init__(self, config: LabConfig, echo: Callable[[str], None] | None = None) -> None:
        if not 6 <= config.hosts <= 10:
            raise LabError("--hosts must be between 6 and 10")
        if not 0 < config.minutes <= MAX_MINUTES:
            raise LabError(f"--minutes must be in (0, {MAX_MINUTES}]")
        if os.geteuid() != 0:
            raise LabError("the lab needs root (ip netns, raw sockets)")
        if config.collect and importlib.util.find_spec("agent_local.__main__") is None:
            raise LabError("agent_local is not runnable (python -m agent_local); nothing would collect")
        self.config = config
        self.prefix = f"{plan_prefix()}"
        self.hosts = plan.host_names(config.hosts)
        self.out = config.out
        self.out.mkdir(parents=True, exist_ok=True)
        self.log_path = self.out / "lab.log"
        self._echo = echo
        self.topology = Topology(self.prefix, self.hosts)
        self.procs = ProcessRegistry(self.out / "logs")
        self._torn_down = False
        self._old_handlers: dict[int, object] = {}

    # -- lifecycle -------------------------------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        atexit.register(self.teardown)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        atexit.unregister(self.teardown)

    def _on_signal(self, signum: int, _frame: object) -> None:
        raise _Terminated(f"signal {signum}")

    def log(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {message}"
        with self.log_path.open("a") as f:
            f.write(line + "\n")
        if self._echo:
            self._echo(line)

    def teardown(self) -> None:
        """Stop every process, delete every namespace and the installed binaries. Idempotent."""
        if self._torn_down:
            return
        self._torn_down = True
        self.procs.stop_all()
        for ns in self.topology.created:
            kill_pids(namespace_pids(ns))
        self.topology.destroy()
        binaries.remove_all()
        self.log("teardown: processes stopped, namespaces and lab binaries removed")

    # -- the run ---------------------------------------------------------------------------------------------------
    def run(self) -> LabResult:
        started = time.monotonic()
        seconds = self.config.minutes * 60
        placement = scenarios.placement(self.hosts)
        self.log(f"lab {self.prefix}: {len(self.hosts)} hosts, {seconds:.0f} s of traffic, out {self.out}")
        binaries.install(scenarios.role_binaries())
        binaries.write_exfil_file(int(80 * seconds) + 512)
        self.topology.build()
        self.log(f"namespaces up: {', '.join(self.topology.created)}")
        self._start_infrastructure(seconds + COLLECTOR_GRACE + 30)
        truth = groundtruth.pairs(placement)
        truth_path = self.out / "ground_truth.json"
        groundtruth.write(truth_path, truth)
        collectors = self._start_collectors(seconds + COLLECTOR_GRACE) if self.config.collect else []
        time.sleep(1.5)  # let the collectors take their first snapshot before the traffic starts
        roles = self._start_roles(placement, seconds)
        roles += self._start_operators(seconds)
        self.log(f"{len(roles)} role processes running; {len(truth)} malicious pairs in the ground truth")
        self._watch(roles, seconds)
        still = self.procs.wait(collectors, COLLECTOR_GRACE + 60)
        if still:
            self.log(f"collectors still running after their duration: {[s.name for s in still]}")
        agent_files = [self.out / f"{h}.jsonl" for h in self.hosts]
        result = LabResult(self.prefix, self.out, self.hosts, [p for p in agent_files if p.exists()], truth_path,
                           self.log_path, count_records(agent_files), time.monotonic() - started)
        (self.out / "lab_result.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
        self.log(f"traffic done; records per host: {result.records}")
        return result

    def _role_argv(self, binary: str, script: str, seconds: float, title: str, args: tuple[str, ...],
                   seed: int) -> list[str]:
        return [binary, str(ROLES_DIR / script), "--duration", f"{seconds:.1f}", "--seed", str(seed),
                "--title", title, *args]

    def _start_infrastructure(self, seconds: float) -> None:
        ready_dir = self.out / "ready"
        ready_dir.mkdir(exist_ok=True)
        python = sys.executable
        zone = json.dumps(plan.ZONE)
        starts: list[tuple[str, str, list[str]]] = [
            (self.topology.core, "resolver", [python, str(ROLES_DIR / "nameserver.py"), "--listen", plan.RESOLVER,
                                              "--zone", zone]),
            (self.topology.inet, "attacker-ns", [python, str(ROLES_DIR / "nameserver.py"), "--listen",
                                                 plan.ATTACKER_NS, "--catch-domain", plan.EXFIL_DOMAIN,
                                                 "--catch-ip", plan.ATTACKER_NS,
                                                 "--sink", str(self.out / "attacker_ns_queries.log")]),
            (self.topology.inet, "inet-servers", [python, str(ROLES_DIR / "servers.py"),
                                                  *(item.as_arg() for item in plan.INET_LISTENERS)]),
            (self.topology.srv, "srv-servers", [python, str(ROLES_DIR / "servers.py"),
                                                *(item.as_arg() for item in plan.SRV_LISTENERS)]),
        ]
        for ns, name, argv in starts:
            ready = ready_dir / name
            self.procs.spawn(ns, name, [*argv, "--duration", f"{seconds:.0f}", "--ready", str(ready)])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if all((ready_dir / name).exists() for _, name, _ in starts):
                self.log("servers ready: resolver, attacker nameserver, internet and internal servers")
                return
            failed = [s.name for s in self.procs.spawned if s.popen.poll() is not None]
            if failed:
                raise LabError(f"lab server(s) exited early: {failed}; see {self.out / 'logs'}")
            time.sleep(0.2)
        raise LabError("lab servers did not become ready within 20 s")

    def _start_collectors(self, seconds: float) -> list[Spawned]:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        out = []
        for host in self.hosts:
            argv = [sys.executable, "-m", "agent_local", "--duration", f"{seconds:.0f}", "--interval",
                    str(self.config.interval), "--host", host, "--dns", "-o", str(self.out / f"{host}.jsonl")]
            out.append(self.procs.spawn(self.topology.ns(host), f"agent-{host}", argv, env=env, cwd=REPO_ROOT))
        self.log(f"collectors started on {len(out)} hosts")
        return out

    def _start_roles(self, placement: dict[str, list[scenarios.Role]], seconds: float) -> list[Spawned]:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
        spawned = []
        for index, (host, roles) in enumerate(placement.items()):
            for role in roles:
                argv = self._role_argv(role.binary, role.script, seconds, role.title, role.args,
                                       self.config.seed * 1000 + index * 10 + len(spawned))
                spawned.append(self.procs.spawn(self.topology.ns(host), f"{host}-{role.name}", argv, env=env,
                                                cwd=Path("/")))
        return spawned

    def _start_operators(self, seconds: float) -> list[Spawned]:
        """The attacker's own processes on the operator's box: they wait for the shells they connect to."""
        return [self.procs.spawn(self.topology.inet, op.name,
                                 [sys.executable, str(ROLES_DIR / op.script), "--duration", f"{seconds:.1f}",
                                  *op.args], cwd=Path("/"))
                for op in scenarios.operators(len(self.hosts))]

    def _watch(self, roles: list[Spawned], seconds: float) -> None:
        """Wait out the traffic, reporting roles that die early (a lab bug, not a detection result)."""
        end = time.monotonic() + seconds
        reported: set[str] = set()
        for _ in range(int(seconds) + 60):
            if time.monotonic() >= end:
                break
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            for item in roles:
                code = item.popen.poll()
                if code not in (None, 0) and item.name not in reported:
                    reported.add(item.name)
                    self.log(f"role {item.name} exited with {code}; see {item.log}")


def plan_prefix() -> str:
    """A short unique namespace prefix per run, so two runs never collide."""
    return f"chlab-{secrets.token_hex(2)}-"


def count_records(files: list[Path]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for path in files:
        kinds: Counter[str] = Counter()
        if path.exists():
            with path.open() as f:
                for line in f:
                    try:
                        kinds[str(json.loads(line).get("kind", "?"))] += 1
                    except ValueError:
                        kinds["unparsable"] += 1
        counts[path.stem] = dict(kinds)
    return counts


def run_lab(config: LabConfig, echo: Callable[[str], None] | None = None) -> LabResult:
    """Run one lab end to end; the fleet is torn down before this returns or raises."""
    lab = Lab(config, echo)
    with lab:
        try:
            return lab.run()
        except _Terminated as exc:
            lab.log(f"stopped by {exc}")
            raise SystemExit(143) from None
        except KeyboardInterrupt:
            lab.log("interrupted (Ctrl-C)")
            raise
