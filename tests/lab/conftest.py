"""Shared skips for the lab tests: they need root, ip netns and the collector."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

needs_netns = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                 reason="needs root and ip netns")
needs_agent = pytest.mark.skipif(importlib.util.find_spec("agent_local.__main__") is None,
                                 reason="agent_local is not runnable yet")
