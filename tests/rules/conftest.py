"""One scored fleet per test module: `connhunt score` runs once, the tests read its JSON report."""

from __future__ import annotations

import pytest

from tests.rules.scenario import Scored, score


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Scored:
    return score(tmp_path_factory.mktemp("fleet"))
