"""Sigma rules for the findings shown (``--min-risk`` chooses which): the same generator as `connhunt rules`, so
the same process -> destination pair is caught by the SIEM from now on."""

from __future__ import annotations

from orchestrator.model import HuntReport
from orchestrator.rules.generator import rules_for_all, to_yaml


def render(report: HuntReport) -> str:
    return to_yaml(rules_for_all(report.findings))
