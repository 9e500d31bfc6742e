"""Run a real Velociraptor server and client on loopback for connhunt's fleet tests.

Pure helpers, no pytest: conftest.py turns them into fixtures, and bench/pull reuses them. The binary comes from
build.sh (built from the pinned module version and cached outside the repository).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build.sh"
VERSION = os.environ.get("CONNHUNT_VR_VERSION", "v0.77.2")
API_USER = "connhunt_test"


class HarnessError(RuntimeError):
    """The server or client could not be brought up; the message carries the tail of the relevant log."""


class BinaryUnavailable(HarnessError):
    """No binary and no way to build one here (Go missing): tests skip, except in CI."""


def default_binary_path() -> Path:
    if os.environ.get("CONNHUNT_VELOCIRAPTOR"):
        return Path(os.environ["CONNHUNT_VELOCIRAPTOR"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "connhunt" / f"velociraptor-{VERSION.lstrip('v')}"


def _go_available() -> bool:
    return bool(os.environ.get("GO") or shutil.which("go") or Path("/usr/local/go/bin/go").exists())


def find_binary(build: bool = True, log_path: Path | None = None) -> Path:
    """The cached binary, building it with build.sh when missing (a build takes several minutes)."""
    path = default_binary_path()
    if path.is_file() and os.access(path, os.X_OK):
        return path
    if not build:
        raise BinaryUnavailable(f"no Velociraptor binary at {path}; run {BUILD_SCRIPT}")
    if not _go_available():
        raise BinaryUnavailable(f"no Velociraptor binary at {path} and no Go toolchain to build it")
    log_path = log_path or Path(os.environ.get("TMPDIR", "/tmp")) / "connhunt-velociraptor-build.log"
    with open(log_path, "wb") as log:
        proc = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, stderr=log, timeout=3600)
    if proc.returncode != 0:
        raise HarnessError(f"build.sh failed (exit {proc.returncode}); log {log_path}:\n{tail(log_path)}")
    built = Path(proc.stdout.decode().strip().splitlines()[-1])
    if not built.is_file():
        raise HarnessError(f"build.sh reported {built}, which does not exist")
    return built


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the usual small race is acceptable in tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.5, what: str = "condition") -> Any:
    """Poll until predicate() is truthy; bounded by timeout. Returns the truthy value."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - polled conditions fail until ready
            last_exc = exc
        time.sleep(interval)
    raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what}" + (f": {last_exc}" if last_exc else ""))


def wait_for_port(port: int, timeout: float) -> None:
    def is_open() -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(is_open, timeout, 0.25, f"port {port}")


@dataclass
class Ports:
    frontend: int
    api: int
    gui: int
    monitoring: int

    @classmethod
    def allocate(cls) -> Ports:
        chosen: set[int] = set()
        while len(chosen) < 4:
            chosen.add(free_port())
        return cls(*sorted(chosen))


def server_merge(tmp: Path, ports: Ports) -> dict[str, Any]:
    """The JSON merged into `config generate`: everything on loopback, all state in tmp."""
    return {
        "Client": {
            "server_urls": [f"https://localhost:{ports.frontend}/"],
            "use_self_signed_ssl": True,
            "writeback_linux": str(tmp / "client.writeback.yaml"),
            "tempdir_linux": str(tmp / "client-tmp"),
            "local_buffer": {"filename_linux": str(tmp / "client.buffer")},
            # poll quickly so collections start within a second or two
            "max_poll": 1,
            "max_poll_std": 1,
        },
        "Frontend": {"hostname": "localhost", "bind_address": "127.0.0.1", "bind_port": ports.frontend},
        "API": {"hostname": "localhost", "bind_address": "127.0.0.1", "bind_port": ports.api},
        "GUI": {"bind_address": "127.0.0.1", "bind_port": ports.gui, "use_plain_http": False},
        "Monitoring": {"bind_address": "127.0.0.1", "bind_port": ports.monitoring},
        "Datastore": {
            "implementation": "FileBaseDataStore",
            "location": str(tmp / "datastore"),
            "filestore_directory": str(tmp / "filestore"),
        },
        "Logging": {"output_directory": str(tmp / "server-logs"), "separate_logs_per_component": False},
        # the server caches ACLs; keep that short so a user minted later is honoured quickly
        "defaults": {"acl_lru_timeout_sec": 2, "hunt_dispatcher_refresh_sec": 1},
    }


def run(binary: Path, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise HarnessError(f"velociraptor {' '.join(args[:3])} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the session started for ``proc`` (start_new_session: its group id is its pid)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Velociraptor:
    """A running loopback deployment: what tests need to talk to it."""

    binary: Path
    tmp: Path
    server_config: Path
    client_config: Path
    api_config: Path
    ports: Ports
    client_id: str = ""
    hostname: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def server_log(self) -> Path:
        return self.tmp / "frontend.log"

    @property
    def client_log(self) -> Path:
        return self.tmp / "client.log"

    def logs_tail(self, lines: int = 40) -> str:
        return (f"--- frontend log ({self.server_log}) ---\n{tail(self.server_log, lines)}\n"
                f"--- client log ({self.client_log}) ---\n{tail(self.client_log, lines)}")

    # -- queries through the API with the velociraptor binary itself (independent of connhunt's own client) --

    def query(self, vql: str, env: dict[str, Any] | None = None, timeout: float = 120) -> list[dict[str, Any]]:
        args = ["--api_config", str(self.api_config), "query", "--format", "jsonl"]
        for key, value in (env or {}).items():
            args += ["--env", f"{key}={value}"]
        proc = run(self.binary, *args, vql, timeout=timeout)
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    # -- lifecycle --

    def start_server(self, timeout: float = 60) -> None:
        self._spawn("frontend", [str(self.binary), "--config", str(self.server_config), "frontend", "-v"],
                    self.server_log)
        try:
            wait_for_port(self.ports.api, timeout)
            wait_for_port(self.ports.frontend, timeout)
        except HarnessError as exc:
            raise HarnessError(f"{exc}\n{self.logs_tail()}") from None

    def start_client(self) -> None:
        self._spawn("client", [str(self.binary), "--config", str(self.client_config), "client", "-v"],
                    self.client_log)

    def _spawn(self, name: str, argv: list[str], log_path: Path) -> None:
        log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the process
        # own process group so teardown never touches anything else
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True, cwd=self.tmp)
        log.close()

    def stop(self, name: str, timeout: float = 15) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        # The frontend runs a child process of its own: signal the process group we created for it.
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(10)
        _signal_group(proc, signal.SIGKILL)  # any child that outlived its parent

    def stop_all(self) -> None:
        # client first so it does not spin reconnecting to a dead server
        for name in ("client", "frontend"):
            self.stop(name)

    def restart_server(self, timeout: float = 60) -> None:
        self.stop("frontend")
        self.start_server(timeout)

    def wait_enrolled(self, timeout: float = 120, reinterrogate_after: float = 30) -> None:
        """Until the client shows up with a hostname and a finished interrogation.

        Velociraptor 0.77.2 can lose the first interrogation: the client's first poll gets an empty message
        ("Unsupported payload for message") and the server's Generic.Client.Info flow stays RUNNING for ever. When
        the client is known but still has no hostname after ``reinterrogate_after`` seconds, collect
        Generic.Client.Info once more, as the GUI's Interrogate button does; its completion fills in the record.
        """
        started = time.monotonic()
        reissued: list[str] = []

        def enrolled() -> dict[str, Any] | None:
            self._check_alive()
            rows = self.query("SELECT client_id, os_info, last_interrogate_flow_id FROM clients()", timeout=30)
            for row in rows:
                if (row.get("os_info") or {}).get("hostname") and row.get("last_interrogate_flow_id"):
                    return row
            if rows and not reissued and time.monotonic() - started > reinterrogate_after:
                reissued.append(self.interrogate(rows[0]["client_id"]))
            return None

        try:
            row = wait_for(enrolled, timeout, 1.0, "the client to enrol and be interrogated")
        except HarnessError as exc:
            again = f" (Generic.Client.Info re-issued as {reissued[0]})" if reissued else ""
            raise HarnessError(f"{exc}{again}\n{self.logs_tail()}") from None
        self.client_id = row["client_id"]
        self.hostname = row["os_info"]["hostname"]

    def interrogate(self, client_id: str) -> str:
        """Start a Generic.Client.Info collection on the client; returns its flow id."""
        rows = self.query("SELECT collect_client(client_id=ClientId, artifacts='Generic.Client.Info').flow_id "
                          "AS flow_id FROM scope()", env={"ClientId": client_id}, timeout=30)
        return str(rows[0]["flow_id"]) if rows else ""

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise HarnessError(f"velociraptor {name} exited with {proc.returncode}\n{self.logs_tail()}")


def prepare(binary: Path, tmp: Path) -> Velociraptor:
    """Write the server, client and API configs into tmp; nothing is started yet."""
    tmp.mkdir(parents=True, exist_ok=True)
    for sub in ("datastore", "filestore", "server-logs", "client-tmp"):
        (tmp / sub).mkdir(exist_ok=True)
    ports = Ports.allocate()
    generated = run(binary, "config", "generate", "--merge", json.dumps(server_merge(tmp, ports)))
    server_config = tmp / "server.config.yaml"
    server_config.write_text(generated.stdout)
    server_config.chmod(0o600)
    client_config = tmp / "client.config.yaml"
    client_config.write_text(run(binary, "--config", str(server_config), "config", "client").stdout)
    client_config.chmod(0o600)
    api_config = tmp / "api.config.yaml"
    # Minted before the frontend starts: the server caches ACLs, so a user added later is seen only after a delay.
    run(binary, "--config", str(server_config), "config", "api_client", "--name", API_USER,
        "--role", "administrator", str(api_config))
    api = yaml.safe_load(api_config.read_text())
    if not str(api.get("api_connection_string", "")).endswith(f":{ports.api}"):
        raise HarnessError(f"api config points at {api.get('api_connection_string')!r}, not port {ports.api}")
    return Velociraptor(binary=binary, tmp=tmp, server_config=server_config, client_config=client_config,
                        api_config=api_config, ports=ports)


@contextmanager
def deployment(binary: Path, tmp: Path, enrol_timeout: float = 180) -> Iterator[Velociraptor]:
    """A started server and enrolled client, torn down (client first) however the body ends."""
    vr = prepare(binary, tmp)
    try:
        vr.start_server()
        vr.start_client()
        vr.wait_enrolled(enrol_timeout)
        yield vr
    finally:
        vr.stop_all()
