"""Fleet commands facing a broken setup: each failure is one line on stderr, exit 3, no traceback, no key.

Wrong CA, wrong key, a foreign client certificate, an unreachable server, an unknown hunt id and an expired hunt,
all against the real server from the session fixture.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.velociraptor import api

pytestmark = pytest.mark.velociraptor

ROOT = Path(__file__).resolve().parents[2]
COLLECTION_FAILED = 3


def run_cli(*args: str, tmp: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from orchestrator.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200", "CONNHUNT_DATA": str(tmp / "data")})


def key_lines(config: Path) -> list[str]:
    """Lines of the private key's body: none may ever be printed."""
    key = yaml.safe_load(config.read_text())["client_private_key"]
    return [line for line in key.splitlines() if line and "-----" not in line]


def assert_one_line_failure(proc: subprocess.CompletedProcess[str], *must_name: str, secrets: list[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == COLLECTION_FAILED, (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("connhunt: error: "), lines
    assert "Traceback" not in proc.stderr + proc.stdout
    for text in must_name:
        assert text in lines[0], (text, lines[0])
    for secret in secrets:
        assert secret not in proc.stderr + proc.stdout
    return lines[0]


@pytest.fixture(scope="module")
def foreign(velociraptor_binary: Path) -> dict:
    """Another deployment's keys: a CA, a certificate and a key that this server never issued."""
    out = subprocess.run([str(velociraptor_binary), "config", "generate"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return yaml.safe_load(out)


def broken_config(velociraptor, tmp_path: Path, **changes: str) -> Path:
    data = yaml.safe_load(velociraptor.api_config.read_text())
    data.update(changes)
    path = tmp_path / "api.config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_wrong_ca(velociraptor, foreign: dict, tmp_path: Path) -> None:
    config = broken_config(velociraptor, tmp_path, ca_certificate=foreign["Client"]["ca_certificate"])
    proc = run_cli("clients", "--api-config", str(config), tmp=tmp_path)
    line = assert_one_line_failure(proc, f"127.0.0.1:{velociraptor.ports.api}", secrets=key_lines(config))
    assert "CA" in line


def test_wrong_key(velociraptor, foreign: dict, tmp_path: Path) -> None:
    config = broken_config(velociraptor, tmp_path, client_private_key=foreign["Frontend"]["private_key"])
    proc = run_cli("hunt", "--api-config", str(config), tmp=tmp_path)
    line = assert_one_line_failure(proc, f"127.0.0.1:{velociraptor.ports.api}", secrets=key_lines(config))
    assert "wrong key" in line


def test_certificate_of_another_server(velociraptor, foreign: dict, tmp_path: Path) -> None:
    config = broken_config(velociraptor, tmp_path, client_cert=foreign["Frontend"]["certificate"],
                           client_private_key=foreign["Frontend"]["private_key"])
    proc = run_cli("artifacts", "push", "--api-config", str(config), tmp=tmp_path)
    line = assert_one_line_failure(proc, f"127.0.0.1:{velociraptor.ports.api}", secrets=key_lines(config))
    assert "client certificate" in line


def test_unreachable_server(velociraptor, tmp_path: Path) -> None:
    import harness

    port = harness.free_port()  # nothing listens there
    config = broken_config(velociraptor, tmp_path, api_connection_string=f"127.0.0.1:{port}")
    proc = run_cli("hunt", "--api-config", str(config), tmp=tmp_path)
    line = assert_one_line_failure(proc, f"127.0.0.1:{port}", secrets=key_lines(config))
    assert "unreachable" in line


def test_unknown_hunt(velociraptor, tmp_path: Path) -> None:
    proc = run_cli("hunt", "--resume", "H.0DEADBEEF0000", "--api-config", str(velociraptor.api_config),
                   tmp=tmp_path)
    assert_one_line_failure(proc, "unknown hunt H.0DEADBEEF0000", f"127.0.0.1:{velociraptor.ports.api}",
                            secrets=key_lines(velociraptor.api_config))
    assert not (tmp_path / "data").exists() or not list((tmp_path / "data").rglob("*.duckdb"))


def test_expired_hunt(velociraptor, tmp_path: Path) -> None:
    with api.connect(velociraptor.api_config) as client:
        api.push_artifacts(client)
        # A label no client carries, so the hunt reaches nobody before it expires.
        hunt_id = api.create_hunt(client, label="connhunt-nobody", expires="2s")
    time.sleep(3)
    proc = run_cli("hunt", "--resume", hunt_id, "--api-config", str(velociraptor.api_config), tmp=tmp_path)
    line = assert_one_line_failure(proc, hunt_id, "expired", secrets=key_lines(velociraptor.api_config))
    assert "resume" not in line  # resuming an expired hunt cannot help: do not suggest it


def test_bad_usage_is_exit_2(velociraptor, tmp_path: Path) -> None:
    proc = run_cli("hunt", "--expires", "soon", "--api-config", str(velociraptor.api_config), tmp=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
