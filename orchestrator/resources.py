"""Where connhunt's own artifact files are: inside the installed wheel, or in the source tree.

The wheel ships the top-level ``artifacts/`` folder as the package ``connhunt_artifacts`` (see pyproject.toml),
so an installed connhunt finds its Velociraptor artifacts and osquery pack without a checkout.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

_SOURCE_TREE = Path(__file__).resolve().parents[1] / "artifacts"


def artifacts_dir(kind: str) -> Path:
    """The folder holding one kind of artifact: ``velociraptor`` or ``osquery``."""
    override = os.environ.get("CONNHUNT_ARTIFACTS_DIR")
    if override:
        return Path(override) / kind if (Path(override) / kind).is_dir() else Path(override)
    if (_SOURCE_TREE / kind).is_dir():
        return _SOURCE_TREE / kind
    return Path(str(resources.files("connhunt_artifacts") / kind))
