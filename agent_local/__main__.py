"""Entry point for ``python -m agent_local``."""

from __future__ import annotations

from agent_local.cli import run

run()
