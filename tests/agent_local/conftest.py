"""Fixtures for the agent_local tests (helpers live in agent_helpers.py, a name no other test folder uses)."""

from __future__ import annotations

from agent_helpers import children, listener

__all__ = ["children", "listener"]
