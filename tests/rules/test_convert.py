"""Conversion: what `connhunt rules --target` prints is, rule by rule, exactly what the pySigma backend with its
processing pipeline returns for that rule (the expected side is computed with the backend, never written out)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sigma.backends.crowdstrike import LogScaleBackend
from sigma.backends.elasticsearch import EqlBackend, ESQLBackend
from sigma.backends.kusto import KustoBackend
from sigma.backends.splunk import SplunkBackend
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.pipelines.crowdstrike import crowdstrike_falcon_pipeline
from sigma.pipelines.elasticsearch import ecs_windows
from sigma.pipelines.microsoftxdr import microsoft_xdr_pipeline
from sigma.pipelines.sentinelasim import sentinel_asim_pipeline
from sigma.pipelines.splunk import splunk_windows_pipeline
from sigma.pipelines.sysmon import sysmon_pipeline

from orchestrator.rules import attack, generator
from orchestrator.rules.convert import Query, Target, render
from orchestrator.rules.pipelines import (
    asim_direction_pipeline,
    ecs_direction_pipeline,
    ecs_linux_pipeline,
    falcon_pipeline_additions,
    xdr_direction_pipeline,
)
from orchestrator.rules.report_input import load_findings
from tests.conftest import run_connhunt
from tests.rules.scenario import SYSMON_FIXTURE

# target -> [(dialect, backend factory given the rule's category)]
BACKENDS: dict[str, list[tuple[str, Callable[[str], Any]]]] = {
    "splunk": [("Splunk SPL (Sysmon)", lambda c: SplunkBackend(sysmon_pipeline() + splunk_windows_pipeline()))],
    "kusto": [("Defender for Endpoint (KQL)",
               lambda c: KustoBackend(xdr_direction_pipeline() + microsoft_xdr_pipeline())),
              ("Sentinel ASIM (KQL)", lambda c: KustoBackend(asim_direction_pipeline() + sentinel_asim_pipeline(
                  query_table="_Im_Dns" if c == "dns_query" else None)))],
    "esql": [("Elastic ES|QL (ECS)",
              lambda c: ESQLBackend(ecs_direction_pipeline() + ecs_windows() + ecs_linux_pipeline()))],
    "eql": [("Elastic EQL (ECS)",
             lambda c: EqlBackend(ecs_direction_pipeline() + ecs_windows() + ecs_linux_pipeline()))],
    "logscale": [("CrowdStrike Falcon LogScale",
                  lambda c: LogScaleBackend(falcon_pipeline_additions() + crowdstrike_falcon_pipeline()))],
    "sqlite": [("SQLite", lambda c: sqliteBackend())],
}


def expected_output(rules: list[dict[str, Any]], target: str) -> str:
    return expected_groups([[rule] for rule in rules], target)


def expected_groups(groups: list[list[dict[str, Any]]], target: str) -> str:
    """Each group (a correlation after its base rule) straight through the backend."""
    attack.use_local_data()
    queries = []
    for group in groups:
        head = group[-1]
        for dialect, make in BACKENDS[target]:
            try:
                out = make(group[0]["logsource"]["category"]).convert(SigmaCollection.from_dicts(group))
            except Exception as exc:  # the backend's own refusal, first line, as connhunt prints it
                queries.append(Query(target, dialect, head["id"], head["title"], None, str(exc).splitlines()[0]))
                continue
            for query in [out] if isinstance(out, str) else out:
                queries.append(Query(target, dialect, head["id"], head["title"], str(query)))
    return render(queries)


@pytest.fixture(scope="module")
def windows_report(tmp_path_factory):
    result = run_connhunt("score", str(SYSMON_FIXTURE), "--format", "json", "--quiet")
    assert result.returncode == 0, result.stderr
    path = tmp_path_factory.mktemp("win") / "report.json"
    path.write_text(result.stdout)
    return path


@pytest.mark.parametrize("target", sorted(BACKENDS))
def test_cli_prints_the_backends_output(scored, windows_report, target: str) -> None:
    for report in (scored.report, windows_report):
        rules = generator.rules_for_all(load_findings(report))
        result = run_connhunt("rules", str(report), "--target", target)
        assert result.returncode == 0, result.stderr
        expected = expected_output(rules, target)
        assert result.stdout == expected
        # Refusals are the backends' own gaps: XDR has no DNS table, Falcon's pipeline maps Windows network only.
        assert "# not convertible" not in expected or target in ("kusto", "logscale")


def test_pipelines_connhunt_adds_do_their_job(scored, windows_report) -> None:
    linux = expected_output(generator.rules_for_all(load_findings(scored.report)), "esql")
    assert "process.executable==" in linux and "Image" not in linux and "dns.question.name" in linux
    rules = generator.rules_for_all(load_findings(windows_report))
    esql = expected_output(rules, "esql")
    assert 'network.direction in ("egress", "outbound")' in esql and "destination.port==4444" in esql
    falcon = expected_output(rules, "logscale")
    assert "not convertible" not in falcon and "ContextBaseFileName=/^x\\.exe$/i" in falcon
    defender = expected_output(rules, "kusto")
    assert 'ActionType in~ ("ConnectionSuccess"' in defender and 'NetworkDirection =~ "Outbound"' in defender
    linux_falcon = expected_output(generator.rules_for_all(load_findings(scored.report)), "logscale")
    assert "# not convertible: the CrowdStrike pipeline maps Windows network and DNS events only" in linux_falcon


@pytest.mark.parametrize("target", [t.value for t in Target if t is not Target.sigma])
def test_targets_are_all_covered(target: str) -> None:
    assert target in BACKENDS
