"""Hunt packs: every rule sigma-check clean, queries exactly the backends' output, the VQL and osquery SQL exactly
what connhunt ships in artifacts/, and a pack run as SQL over the fleet finds the planted backdoor only."""

from __future__ import annotations

import json

import pytest
import yaml

from orchestrator.resources import artifacts_dir
from orchestrator.rules import packs, validate
from orchestrator.rules.convert import Target, convert, convert_group, render
from orchestrator.rules.packs import Scenario
from tests.conftest import run_connhunt
from tests.rules.scenario import BACKDOOR, network_events, run_sql
from tests.rules.test_convert import expected_groups


@pytest.mark.parametrize("scenario", list(Scenario))
def test_pack_rules_are_clean_and_stable(scenario: Scenario) -> None:
    rules = packs.rules(packs.pack(scenario))
    assert rules and validate.issues(rules) == []
    assert len({r["id"] for r in rules}) == len(rules)
    assert [r["id"] for r in packs.rules(packs.pack(scenario))] == [r["id"] for r in rules]
    assert {r.get("logsource", {}).get("product") for r in rules if "logsource" in r} == {"windows", "linux"}


@pytest.mark.parametrize("scenario", list(Scenario))
def test_pack_queries_are_the_backends_output(scenario: Scenario) -> None:
    hunt = packs.pack(scenario)
    for target in ("splunk", "kusto", "esql", "eql", "logscale", "sqlite"):
        queries = [q for group in hunt.groups for q in convert_group(list(group), Target(target))]
        assert render(queries) == expected_groups([list(g) for g in hunt.groups], target)


# One CLI run per scenario, each with another target (every target is covered); the CLI adds the VQL and SQL.
@pytest.mark.parametrize("scenario,target", list(zip(Scenario, ("splunk", "kusto", "esql", "eql", "logscale",
                                                                 "sqlite"), strict=True)))
def test_pack_cli_prints_backend_output_vql_and_osquery(scenario: Scenario, target: str) -> None:
    hunt = packs.pack(scenario)
    result = run_connhunt("rules", "--pack", scenario.value, "--target", target)
    assert result.returncode == 0, result.stderr
    siem = expected_groups([list(g) for g in hunt.groups], target)
    assert result.stdout.startswith(siem)
    for name in hunt.artifacts:
        artifact = yaml.safe_load((artifacts_dir("velociraptor") / f"{name}.yaml").read_text(encoding="utf-8"))
        assert all(str(source["query"]).rstrip() in result.stdout for source in artifact["sources"])
    conf = json.loads((artifacts_dir("osquery") / "connhunt.conf").read_text(encoding="utf-8"))
    assert all(conf["queries"][name]["query"].rstrip().rstrip(";") in result.stdout for name in hunt.osquery)


def test_pack_as_sigma_is_one_yaml_stream() -> None:
    result = run_connhunt("rules", "--pack", "beaconing")
    assert result.returncode == 0, result.stderr
    documents = [d for d in yaml.safe_load_all(result.stdout) if d is not None]
    assert documents == packs.rules(packs.pack(Scenario.beaconing))
    assert "# -- Velociraptor artifact Custom.Connhunt.Monitor" in result.stdout


def test_c2_port_pack_finds_the_backdoor_and_nothing_benign(scored) -> None:
    events = network_events(scored.rows)
    own = {e["event"] for e in events if e["Image"] == BACKDOOR}
    linux = next(r for r in packs.rules(packs.pack(Scenario.c2_port)) if r["logsource"]["product"] == "linux")
    (query,) = convert([linux], Target.sqlite)
    assert run_sql(events, query.query) == own
