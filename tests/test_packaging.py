"""The wheel is what users install: it must carry the artifacts and both packages, and point `connhunt` at main."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT


def test_wheel_ships_artifacts_and_finds_them_when_installed(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("connhunt-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "connhunt_artifacts/velociraptor/Custom.Connhunt.Netstat.yaml" in names
    assert "connhunt_artifacts/osquery/connhunt.conf" in names
    assert "agent_local/__main__.py" in names and "orchestrator/cli.py" in names
    assert "orchestrator/rules/data/enterprise-attack.json" in names  # offline ATT&CK data for pySigma
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "connhunt = orchestrator.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    probe = ("from orchestrator.resources import artifacts_dir; d = artifacts_dir('velociraptor'); "
             "print(d); print(sorted(p.name for p in d.glob('*.yaml')))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}).stdout.splitlines()
    assert out[0].startswith(str(target))  # the installed copy, not the source tree
    assert "Custom.Connhunt.Netstat.yaml" in out[1]
