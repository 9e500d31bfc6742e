"""The API client's offline behaviour: config loading, key hygiene, artifact ordering, durations (no server)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.velociraptor import api

KEY_BODY = "MIIEowIBAAKCAQEAsecretsecretsecretsecretsecret"


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    """A self-signed certificate and its key."""
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "connhunt_test")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()).decode())


def write_config(tmp_path: Path, **changes: str) -> Path:
    cert, key = _self_signed(tmp_path)
    data = {"ca_certificate": cert, "client_cert": cert, "client_private_key": key,
            "api_connection_string": "127.0.0.1:1", "name": "t"}
    data.update(changes)
    path = tmp_path / "api.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_config_repr_and_str_hold_no_key(tmp_path: Path) -> None:
    config = api.load_api_config(write_config(tmp_path))
    key_line = config.client_private_key.splitlines()[1]
    assert key_line not in repr(config) and key_line not in str(config)
    client = api.VelociraptorClient(config)
    try:
        assert key_line not in repr(client) and key_line not in repr(vars(client))
    finally:
        client.close()


def test_config_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(api.API_FILE_ENV, str(write_config(tmp_path)))
    assert api.load_api_config().endpoint == "127.0.0.1:1"


@pytest.mark.parametrize(("changes", "says"), [
    ({"client_private_key": f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n-----END RSA PRIVATE KEY-----\n"},
     "not a readable PEM private key"),
    ({"client_private_key": ""}, "missing client_private_key"),
    ({"client_private_key": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nx\n-----END ENCRYPTED PRIVATE KEY-----"},
     "encrypted"),
])
def test_bad_configs_say_why_without_the_key(tmp_path: Path, changes: dict[str, str], says: str) -> None:
    with pytest.raises(api.VelociraptorError) as info:
        api.load_api_config(write_config(tmp_path, **changes))
    message = str(info.value)
    assert says in message and KEY_BODY not in message and "\n" not in message


def test_mismatched_key_is_named(tmp_path: Path) -> None:
    _, other_key = _self_signed(tmp_path)
    with pytest.raises(api.VelociraptorError, match="does not belong to client_cert"):
        api.load_api_config(write_config(tmp_path, client_private_key=other_key))


def test_invalid_yaml_does_not_echo_the_file(tmp_path: Path) -> None:
    path = tmp_path / "api.yaml"
    path.write_text(f"client_private_key: |\n  {KEY_BODY}\n bad: [\n")
    with pytest.raises(api.VelociraptorError) as info:
        api.load_api_config(path)
    assert KEY_BODY not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(api.VelociraptorError, match="cannot read"):
        api.load_api_config(tmp_path / "nope.yaml")


def test_error_messages_are_one_line_and_scrub_pem() -> None:
    error = api.VelociraptorError(f"boom\n-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n-----END RSA PRIVATE KEY-----")
    assert KEY_BODY not in str(error) and "\n" not in str(error)


def test_artifacts_pushed_after_what_they_import() -> None:
    names = [p.stem for p in api.artifact_files()]
    assert names.index("Custom.Connhunt.Netstat") < names.index("Custom.Connhunt.Monitor")
    assert names.index("Custom.Connhunt.Windows.SysmonNetwork") < names.index("Custom.Connhunt.DNS")


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800)])
def test_durations(text: str, seconds: int) -> None:
    assert api.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "0s", "-1h", "1w"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        api.parse_duration(text)


def test_env_values_are_text() -> None:
    assert api._env_value("x'; DROP") == "x'; DROP"  # passed as data, never spliced into VQL
    assert api._env_value({"a": [1]}) == '{"a": [1]}' and api._env_value(5) == "5"


def test_grpc_stays_quiet_and_is_loaded_only_when_used() -> None:
    """gRPC's C core must not print TLS noise to stderr: connhunt prints one line itself. And grpc is not
    loaded by importing the API module (every command does), only by talking to a server."""
    proc = subprocess.run([sys.executable, "-c", "import os, sys; from orchestrator.velociraptor import api; "
                           "print('grpc' in sys.modules); api._grpc(); print(os.environ['GRPC_VERBOSITY'])"],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert proc.stdout.split() == ["False", "NONE"], proc.stderr


def test_each_source_has_its_kind_of_row() -> None:
    """The one mapping the pulls and the zip reader share sends each artifact source to its table."""
    from orchestrator.sources.velociraptor_rows import Endpoint, map_source

    endpoint = Endpoint("web-1", "C.1", client_id="C.1")
    conn = {"host": "web-1", "protocol": "tcp", "remote_ip": "203.0.113.5", "remote_port": 443, "local_port": 5,
            "event": "opened", "attributed": "true", "stdio": "false"}
    listener = {"host": "web-1", "protocol": "tcp", "local_ip": "0.0.0.0", "local_port": 22}
    dns = {"host": "web-1", "query": "x.example", "answers": ["cdn.example.net", "::ffff:192.0.2.7"]}
    cases = {"Custom.Connhunt.Netstat/Linux": conn, "Custom.Connhunt.Monitor": conn,
             "Custom.Connhunt.Netstat/Listeners": listener, "Custom.Connhunt.DNS/WindowsCache": dns,
             "Custom.Connhunt.Windows.SysmonNetwork/DNS": dns,
             "Custom.Connhunt.Windows.SysmonNetwork/Connections": conn}
    got = {source: [(kind, row.get("host_id"), row.get("answers"), row.get("stdio"))
                    for kind, row in map_source(source, [("r1", row)], endpoint, pytest.fail)]
           for source, row in cases.items()}
    assert got == {"Custom.Connhunt.Netstat/Linux": [("connection", "C.1", None, False)],
                   "Custom.Connhunt.Monitor": [("connection", "C.1", None, False)],
                   "Custom.Connhunt.Netstat/Listeners": [("listener", "C.1", None, None)],
                   # canonical addresses only, whichever path the row took
                   "Custom.Connhunt.DNS/WindowsCache": [("dns", "C.1", ["192.0.2.7"], None)],
                   "Custom.Connhunt.Windows.SysmonNetwork/DNS": [("dns", "C.1", ["192.0.2.7"], None)],
                   "Custom.Connhunt.Windows.SysmonNetwork/Connections": [("connection", "C.1", None, False)]}


def test_rows_insert_column_wise_into_every_table() -> None:
    from orchestrator.schema import normalise_connection, normalise_dns, normalise_health
    from orchestrator.store import Store
    with Store() as store:
        conn = normalise_connection({"host": "h", "protocol": "tcp", "remote_ip": "::ffff:203.0.113.5",
                                     "remote_port": 443, "first_seen": 1795395000, "pid": 7})
        dns = normalise_dns({"host": "h", "query": "Example.COM.", "answers": ["203.0.113.5"],
                             "timestamp": "2026-11-23T01:00:00Z"})
        note = normalise_health({"host": "h", "check": "collection_error", "count": 1, "message": "m"})
        assert store.insert("connections", [conn] * 3) == 3
        assert store.insert("dns", [dns]) == 1
        assert store.insert("health", [note]) == 1
        assert store.insert("connections", []) == 0
        row = store.query("SELECT remote_ip, first_seen, attributed FROM connections LIMIT 1")[0]
        assert row["remote_ip"] == "203.0.113.5" and row["first_seen"].year == 2026 and row["attributed"]
        assert store.query("SELECT query, answers FROM dns")[0] == {"query": "example.com",
                                                                     "answers": ["203.0.113.5"]}


@pytest.mark.parametrize("command", [("clients",), ("hunt",), ("hunt", "--resume", "H.1"), ("artifacts", "push"),
                                     ("monitor", "enable"), ("monitor", "disable"),
                                     ("collect", "--client", "C.0123456789abcdef")])
def test_non_utf8_api_config_is_one_line_exit_2(command: tuple[str, ...], tmp_path: Path) -> None:
    """/bin/ls is no API config: every command that takes one says so in one line, exit 2 (bad input)."""
    proc = subprocess.run([sys.executable, "-c", "from orchestrator.cli import main; main()", *command,
                           "--api-config", "/bin/ls"], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2],
                          env={**os.environ, "CONNHUNT_DATA": str(tmp_path)})
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert lines == ["connhunt: error: /bin/ls (--api-config): not a Velociraptor API config (not UTF-8 text: "
                     f"byte {lines[0].rsplit('byte ', 1)[-1]}"], proc.stderr
    assert not list(tmp_path.rglob("*.duckdb"))


def test_parameters_parse_as_data() -> None:
    from orchestrator import fleet_hunt
    from orchestrator.errors import InputError

    assert fleet_hunt.parse_parameters(["ProcessNameRegex=^nginx$", "X=a=b", "Empty="]) == {
        "ProcessNameRegex": "^nginx$", "X": "a=b", "Empty": ""}
    for bad in ("novalue", "=x", "a b=c", "x'; DROP=1"):
        with pytest.raises(InputError):
            fleet_hunt.parse_parameters([bad])


def test_online_means_the_last_minute() -> None:
    from orchestrator import fleet_hunt

    now = 1_800_000_000.0
    clients = [api.ClientInfo(f"C.{age}", f"h{age}", "linux", ("servers",), now - age) for age in (5, 59, 61, 600)]
    clients.append(api.ClientInfo("C.never", "hn", "linux", (), None))
    assert [c.client_id for c in fleet_hunt.online(clients, now)] == ["C.5", "C.59"]
    assert [c.client_id for c in fleet_hunt.targeted(clients, "servers", "LINUX")] == ["C.5", "C.59", "C.61", "C.600"]
    assert fleet_hunt.targeted(clients, "servers", "windows") == []
