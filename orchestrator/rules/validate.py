"""pySigma's own checks on generated rules: parse as the specification says, then every core validator (the set
`sigma check` runs), with the ATT&CK data read from the vendored copy so it works offline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.rules import attack


def parse(rules: Sequence[dict[str, Any]]) -> Any:
    """A SigmaCollection of the rules (raises pySigma's SigmaError on anything the specification rejects)."""
    from sigma.collection import SigmaCollection

    attack.use_local_data()
    return SigmaCollection.from_dicts(list(rules))


def issues(rules: Sequence[dict[str, Any]]) -> list[str]:
    """Every validation issue of the rules, one line each (empty when `sigma check`-clean)."""
    from sigma.validation import SigmaValidator
    from sigma.validators.core import validators

    collection = parse(rules)
    found = SigmaValidator(set(validators.values())).validate_rules(iter(collection.rules))
    lines = []
    for issue in found:
        titles = ", ".join(str(r.title) for r in issue.rules)
        lines.append(f"{type(issue).__name__} ({issue.severity.name}): {issue.description} [{titles}]")
    return lines
