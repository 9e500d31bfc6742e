"""Reads the findings of a connhunt JSON report (`connhunt score ... --format json`); bad input is one
InputError naming the file and where it went wrong."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.errors import InputError
from orchestrator.rules.facts import FindingFacts


def load_findings(path: Path) -> list[FindingFacts]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text: {exc.reason}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg}") from None
    findings = document.get("findings") if isinstance(document, dict) else None
    if not isinstance(findings, list):
        raise InputError(f"{path}: not a connhunt JSON report (no \"findings\" list; "
                         "write one with `connhunt score ... --format json`)")
    facts = []
    for number, finding in enumerate(findings, 1):
        if not isinstance(finding, dict):
            raise InputError(f"{path}: finding {number}: not an object")
        try:
            facts.append(FindingFacts.from_dict(finding))
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}: finding {number}: {exc}") from None
    return facts
