"""Offline MITRE data for pySigma: the ATT&CK (and D3FEND) tag validators download it at run time, which fails
without a network, so connhunt points pySigma at the trimmed copies in ``data/`` before anything reads them.

``python -m orchestrator.rules.attack trim enterprise-attack.json data/enterprise-attack.json`` refreshes the
vendored copy from the public bundle: only the objects and fields pySigma's loader reads are kept.
"""

from __future__ import annotations

import json
import sys
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

ATTACK_FILE = "enterprise-attack.json"
D3FEND_FILE = "d3fend.json"
# What sigma.data.mitre_attack reads: the collection's version, tactics, techniques (with their tactics),
# groups, software, data sources and mitigations. Everything else in the 40 MB bundle is dropped.
_KEPT_TYPES = {"x-mitre-collection", "x-mitre-tactic", "attack-pattern", "intrusion-set", "malware", "tool",
               "x-mitre-data-source", "course-of-action"}
_KEPT_FIELDS = ("type", "id", "name", "x_mitre_version", "x_mitre_shortname", "kill_chain_phases")


def data_path(name: str) -> Path:
    return Path(str(resources.files("orchestrator.rules") / "data" / name))


def trim(bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle with only what pySigma's ATT&CK loader reads; revoked and deprecated objects are dropped, as
    the loader would skip them anyway."""
    objects = []
    for obj in bundle.get("objects", []):
        if obj.get("type") not in _KEPT_TYPES or obj.get("revoked") or obj.get("x_mitre_deprecated"):
            continue
        kept = {key: obj[key] for key in _KEPT_FIELDS if key in obj}
        refs = [{"source_name": "mitre-attack", "external_id": ref["external_id"]}
                for ref in obj.get("external_references", [])
                if ref.get("source_name") == "mitre-attack" and ref.get("external_id")]
        if refs:
            kept["external_references"] = refs
        if "kill_chain_phases" in kept:
            kept["kill_chain_phases"] = [phase for phase in kept["kill_chain_phases"]
                                         if phase.get("kill_chain_name") == "mitre-attack"]
        objects.append(kept)
    return {"type": "bundle", "id": bundle.get("id", "bundle--connhunt-trimmed"), "objects": objects}


_CACHE_DIR: tempfile.TemporaryDirectory[str] | None = None


@cache
def use_local_data() -> None:
    """Point pySigma's ATT&CK and D3FEND loaders at the vendored files, with a private cache directory (so the
    user's ~/.cache/pysigma is neither read nor cleared). Idempotent; call before validating or converting."""
    from sigma.data import mitre_attack, mitre_d3fend

    # pySigma caches what it loaded with diskcache; a directory of this process's own, removed at exit.
    global _CACHE_DIR
    _CACHE_DIR = tempfile.TemporaryDirectory(prefix="connhunt-pysigma-")
    cache_root = Path(_CACHE_DIR.name)
    for module, name in ((mitre_attack, ATTACK_FILE), (mitre_d3fend, D3FEND_FILE)):
        module.set_cache_dir(str(cache_root / name))
        module.set_url(str(data_path(name)))


def techniques() -> dict[str, str]:
    """ATT&CK technique id (T1571, T1048.003) -> name, from the vendored data."""
    from sigma.data import mitre_attack

    use_local_data()
    return dict(mitre_attack.mitre_attack_techniques)


def tactics_of(technique: str) -> list[str]:
    """The tactic short names (command-and-control, exfiltration) a technique belongs to."""
    from sigma.data import mitre_attack

    use_local_data()
    return list(mitre_attack.mitre_attack_techniques_tactics_mapping.get(technique.upper(), []))


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "trim":
        print("usage: python -m orchestrator.rules.attack trim ENTERPRISE_ATTACK.json OUT.json", file=sys.stderr)
        return 2
    bundle = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    Path(argv[2]).write_text(json.dumps(trim(bundle), separators=(",", ":")) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
