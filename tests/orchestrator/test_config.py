"""The config is checked in full at load time against Config's type hints: each wrong value is one error with the
file, the line and the key, and a bad config stops triage before it collects anything."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.config import Allow, Config, load_config
from orchestrator.errors import InputError
from tests.conftest import connection, run_connhunt


def _error(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "connhunt.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(InputError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:"), message
    return message.removeprefix(f"{path}:")


@pytest.mark.parametrize(("text", "expected"), [
    ("beacon_min_connections: six\n", "1: invalid config: beacon_min_connections: expected an integer, got 'six'"),
    ("common_ports: 5\n", "1: invalid config: common_ports: expected a list of integers, got '5'"),
    ("min_fleet_for_prevalence: [1]\n",
     "1: invalid config: min_fleet_for_prevalence: expected an integer, got a list"),
    ("rare_share: abc\n", "1: invalid config: rare_share: expected a number, got 'abc'"),
    ("ignore_loopback: maybe\n", "1: invalid config: ignore_loopback: expected true or false, got 'maybe'"),
    ('resolvers: [10.0.0.53]\nallow: [{port: "abc"}]\n',
     "2: invalid config: allow[0].port: expected an integer, got 'abc'"),
    ("scan_min_targets: null\n", "1: invalid config: scan_min_targets: expected an integer, got null"),
    ("allow: 5\n", "1: invalid config: allow: expected a list of mappings with keys process, remote, port, host, "
                   "got '5'"),
    # YAML's 1 is not true, and true is not 1
    ("ignore_link_local: 1\n", "1: invalid config: ignore_link_local: expected true or false, got '1'"),
    ("allow:\n  - {port: true}\n", "2: invalid config: allow[0].port: expected an integer, got 'true'"),
    # values of the right type that still cannot work
    ("internal_networks: [10.0.0.0/8, 10.0.0.0/33]\n",
     "1: invalid config: internal_networks[1]: '10.0.0.0/33' does not appear to be an IPv4 or IPv6 network"),
    ("resolvers:\n  - 10.0.0.53\n  - dns.example\n",
     "3: invalid config: resolvers[1]: 'dns.example' does not appear to be an IPv4 or IPv6 address"),
    ("common_ports: [80, 70000]\n", "1: invalid config: common_ports[1]: 70000 is not a port number (0-65535)"),
    ("rare_share: 2\n", "1: invalid config: rare_share: 2.0 is not a share between 0 and 1"),
    ("beacon_min_connections: 1\n", "1: invalid config: beacon_min_connections: 1 is less than 2"),
    ("allow:\n  - {remote: 198.51.100.0/24}\n  - {}\n",
     "3: invalid config: allow[1]: an allow entry needs at least one of process, remote, port, host"),
    # keys
    ("internal_networks: [10.0.0.0/8]\nresolverz: [1.1.1.1]\n",
     "2: invalid config: unknown config key(s): resolverz (did you mean resolvers?)"),
    ("allow:\n  - process: /opt/agent\n    prot: 4444\n",
     "3: invalid config: allow[0]: unknown key(s): prot (did you mean port?)"),
    ("rare_share: 0.1\nrare_share: 0.2\n", "2: invalid config: rare_share: given twice"),
    # the file as a whole
    ("- 10.0.0.0/8\n", "1: invalid config: a config file must be a YAML mapping of key: value"),
    ("resolvers: [10.0.0.53\n", "2: not valid YAML: expected ',' or ']', but got '<stream end>'"),
    (b"resolvers: [10.0.0.53]\nallow: [{process: caf\xe9}]\n", "2: not a YAML config: not UTF-8 text (byte 44)"),
])
def test_a_wrong_value_is_one_located_error(tmp_path: Path, text: str | bytes, expected: str) -> None:
    assert _error(tmp_path, text) == expected


def test_a_valid_config_loads_every_key(tmp_path: Path) -> None:
    path = tmp_path / "connhunt.yaml"
    path.write_text("# every key optional\n"
                    "internal_networks: [10.0.0.0/8, fd00::/8]\n"
                    "resolvers: [10.0.0.53]\n"
                    "allow:\n"
                    "  - {process: /opt/backup/agent, port: 4444}\n"
                    "  - {remote: 198.51.100.0/24}\n"
                    "baseline: fleet.duckdb\n"
                    "ignore_loopback: false\n"
                    "rare_share: 0.05\n"
                    "common_ports: [443]\n"
                    "scan_min_half_open: 0\n")
    assert load_config(path) == Config(
        internal_networks=("10.0.0.0/8", "fd00::/8"), resolvers=("10.0.0.53",),
        allow=(Allow(process="/opt/backup/agent", port=4444), Allow(remote="198.51.100.0/24")),
        baseline="fleet.duckdb", ignore_loopback=False, rare_share=0.05, common_ports=(443,), scan_min_half_open=0)


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "connhunt.yaml"
    path.write_text("# nothing set\n")
    assert load_config(path) == Config()


def test_every_field_of_config_has_a_rule(tmp_path: Path) -> None:
    """The defaults written out as YAML load back equal: a field added to Config with a type the loader has no
    rule for fails here, not in a user's hunt."""
    def plain(value: object) -> object:
        if dataclasses.is_dataclass(value):
            return {k: plain(v) for k, v in dataclasses.asdict(value).items() if v is not None}
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value

    sample = Config(allow=(Allow(process="/opt/agent", remote="198.51.100.0/24", port=1, host="h"),),
                    resolvers=("10.0.0.53",), baseline="b.duckdb")
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump({f.name: plain(getattr(sample, f.name)) for f in dataclasses.fields(Config)}))
    assert load_config(path) == sample


def test_a_bad_config_stops_triage_before_it_collects(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("internal_networks: [10.0.0.0/8]\nrare_share: abc\n")
    started = time.monotonic()
    result = run_connhunt("triage", "--duration", "60", "--config", str(config))
    assert time.monotonic() - started < 30  # not after the 60 s collection
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"connhunt: error: {config}:2: invalid config: rare_share: expected a number, got 'abc'\n"


def test_a_bad_config_is_the_same_error_for_score(tmp_path: Path, jsonl) -> None:
    data = jsonl("h.jsonl", [connection()])
    config = tmp_path / "c.yaml"
    config.write_bytes(b"resolvers: [\xff]\n")
    result = run_connhunt("score", str(data), "--config", str(config), "--quiet")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"connhunt: error: {config}:1: not a YAML config: not UTF-8 text (byte 12)\n"
