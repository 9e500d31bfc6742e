"""Shared test helpers: run the real `connhunt` entry point and build connhunt JSONL records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 23, 1, 0, 0, tzinfo=timezone.utc)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def connection(**fields: Any) -> dict[str, Any]:
    """One agent_local connection record with ordinary defaults, overridden by ``fields``."""
    record = {"kind": "connection", "host": "h1", "os": "linux", "source": "agent_local", "pid": 100, "ppid": 1,
              "process_name": "app", "process_path": "/usr/bin/app", "command_line": "/usr/bin/app",
              "username": "alice", "parent_name": "systemd", "parent_path": "/usr/lib/systemd/systemd",
              "protocol": "tcp", "family": "ipv4", "local_ip": "10.0.0.5", "local_port": 40000,
              "remote_ip": "198.51.100.10", "remote_port": 443, "state": "ESTABLISHED", "first_seen": at(0),
              "last_seen": at(1), "observations": 1, "attributed": True}
    record.update(fields)
    return record


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def run_connhunt(*args: str, timeout: float = 300, netns: str | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed entry point, as a user runs it (optionally inside a network namespace)."""
    command = [sys.executable, "-c", "from orchestrator.cli import main; main()", *args]
    if netns:
        command = ["ip", "netns", "exec", netns, *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


@pytest.fixture
def jsonl(tmp_path: Path):
    def make(name: str, records: list[dict[str, Any]]) -> Path:
        return write_jsonl(tmp_path / name, records)

    return make
