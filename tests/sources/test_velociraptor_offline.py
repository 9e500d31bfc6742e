"""Velociraptor collection zips: a real one made by the real binary while this process holds a loopback
connection, and built ones for the stock artifacts and the broken cases (truncated, encrypted, unknown artifact).

The built zips follow the layout Velociraptor 0.77 writes (vql/tools/collector: results/<Artifact>%2F<Source>.json
JSON lines plus .json.index, client_info.json, collection_context.json, log.json), with rows in the shape the
artifacts emit (Linux.Network.Netstat's row taken from a real collection on this machine).
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_connhunt
from tests.sources.helpers import health, one_line_error, read, rows, score_json, utc

IN_CI = os.environ.get("CI", "").lower() == "true"
T0 = 1795395600  # 2026-11-23T01:00:00Z

CLIENT_INFO = {"Hostname": "web-2", "Uptime": 1239, "BootTime": T0 - 1239, "OS": "linux", "Platform": "debian",
               "PlatformFamily": "debian", "PlatformVersion": "12.11", "KernelVersion": "6.1.0",
               "HostID": "3d1219c7-c4c5-404a-aa1f-6d2a48adfda4", "Fqdn": "web-2.corp.example", "Architecture": "amd64"}


def schema_row(**fields: Any) -> dict[str, Any]:
    """A Custom.Connhunt.Netstat row as the artifact writes it (epoch seconds, nulls for unknowns)."""
    row = {"host": "web-2", "host_id": CLIENT_INFO["HostID"], "os": "linux", "collected_at": T0,
           "source": "velociraptor", "pid": 4242, "ppid": 1, "process_name": "kworkerd",
           "process_path": "/dev/shm/kworkerd", "command_line": "/dev/shm/kworkerd", "username": "www-data",
           "process_start": T0 - 600, "parent_name": "systemd", "parent_path": "/usr/lib/systemd/systemd",
           "exe_sha256": None, "protocol": "tcp", "family": "ipv4", "local_ip": "10.0.0.6", "local_port": 41000,
           "remote_ip": "203.0.113.5", "remote_port": 4444, "state": "ESTABLISHED", "first_seen": T0,
           "last_seen": T0, "observations": 1, "attributed": True, "direction": "outbound", "seen_by": "snapshot",
           "attribution": "pid", "stdio": None}
    row.update(fields)
    return row


def make_zip(path: Path, results: dict[str, list[Any]], *, client_info: dict | None = CLIENT_INFO,
             extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, lines in results.items():
            body = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
            archive.writestr(f"results/{name.replace('/', '%2F')}.json", body)
            archive.writestr(f"results/{name.replace('/', '%2F')}.json.index", b"\0" * 8 * len(lines))
        archive.writestr("log.json", json.dumps({"_ts": T0, "client_time": T0, "level": "DEFAULT",
                                                 "message": "Starting collection\n"}) + "\n")
        if client_info is not None:
            archive.writestr("client_info.json", json.dumps(client_info, indent=1))
        archive.writestr("collection_context.json", json.dumps({"session_id": "F.TEST", "create_time": T0 * 10**9,
                                                                "state": 2, "artifacts_with_results": list(results)}))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def test_connhunt_netstat_rows_and_host_from_client_info(tmp_path: Path) -> None:
    row = schema_row()
    path = make_zip(tmp_path / "collection-web-2.zip", {f"Custom.Connhunt.Netstat/{s}": [row]
                                                        for s in ("Linux", "Windows", "MacOS")})
    name, records = read(path)
    assert name == "velociraptor"
    assert rows(records, "connection") == [{
        "host": "web-2", "host_id": CLIENT_INFO["HostID"], "os": "linux", "collected_at": utc("2026-11-23T01:00:00"),
        "source": "velociraptor", "pid": 4242, "ppid": 1, "process_name": "kworkerd",
        "process_path": "/dev/shm/kworkerd", "process_identity": "/dev/shm/kworkerd",
        "command_line": "/dev/shm/kworkerd", "username": "www-data", "process_start": utc("2026-11-23T00:50:00"),
        "parent_name": "systemd", "parent_path": "/usr/lib/systemd/systemd",
        "exe_sha256": None, "protocol": "tcp", "family": "ipv4", "local_ip": "10.0.0.6", "local_port": 41000,
        "remote_ip": "203.0.113.5", "remote_port": 4444, "state": "ESTABLISHED",
        "first_seen": utc("2026-11-23T01:00:00"), "last_seen": utc("2026-11-23T01:00:00"), "observations": 1,
        "remote_hostname": None, "attributed": True, "direction": "outbound", "seen_by": "snapshot",
        "attribution": "pid", "stdio": None}]
    # `artifacts collect` runs all three OS sources: only the endpoint's own (client_info.json OS linux) is read
    assert health(records) == {"other_os_source": 2}


def test_stray_macos_members_and_a_readme_are_skipped_with_a_note(tmp_path: Path) -> None:
    sidecar = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "  # an AppleDouble header: not JSON rows
    path = make_zip(tmp_path / "web-2.zip", {"Custom.Connhunt.Netstat/Linux": [schema_row()]}, extra={
        "__MACOSX/results/._Custom.Connhunt.Netstat%2FLinux.json": sidecar, "results/._extra.json": sidecar,
        "README.txt": b"collected by the night shift\n"})
    name, records = read(path)
    assert [r["pid"] for r in rows(records, "connection")] == [4242]
    assert health(records) == {"stray_members": 2}


def test_identical_sources_are_read_once_when_the_os_is_unknown(tmp_path: Path) -> None:
    row = schema_row()
    path = make_zip(tmp_path / "web-2.zip", {f"Custom.Connhunt.Netstat/{s}": [row] for s in ("Linux", "Windows")},
                    client_info=None)
    name, records = read(path)
    assert len(rows(records, "connection")) == 1
    assert health(records) == {"duplicate_source": 1, "host_from_file_name": 1}


def test_score_finds_the_planted_connection(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "web-2.zip", {"Custom.Connhunt.Netstat/Linux": [
        schema_row(), schema_row(pid=700, process_name="curl", process_path="/usr/bin/curl", local_port=41001,
                                 remote_ip="198.51.100.10", remote_port=443)]})
    document = score_json(path)
    top = document["findings"][0]
    assert (top["host"], top["process_path"], top["remote_ip"], top["remote_port"], top["pids"]) == (
        "web-2", "/dev/shm/kworkerd", "203.0.113.5", 4444, [4242])
    assert document["hunt"]["sources"] == [f"velociraptor:{path}"]
    assert document["hunt"]["rows"] == {"connections": 2, "listeners": 0, "dns": 0}


def test_sysmon_and_dns_artifacts(tmp_path: Path) -> None:
    sysmon = schema_row(host="WS-7", host_id="C.1234", os="windows", source="sysmon", pid=5120, ppid=None,
                        process_name="x.exe", process_path="C:\\Users\\Public\\x.exe", command_line=None,
                        username="CORP\\bob", process_start=None, parent_name=None, parent_path=None,
                        local_ip="192.168.56.10", local_port=49712, remote_hostname=None)
    lookup = {"host": "WS-7", "host_id": "C.1234", "collected_at": T0, "source": "sysmon", "pid": 5120,
              "process_name": "x.exe", "process_path": "C:\\Users\\Public\\x.exe", "query": "update.bad.example",
              "qtype": None, "answers": ["cdn.bad.example", "::ffff:203.0.113.5"], "response_code": "NOERROR",
              "server_ip": None, "timestamp": T0 - 1}
    path = make_zip(tmp_path / "ws-7.zip", {"Custom.Connhunt.Windows.SysmonNetwork/Connections": [sysmon],
                                            "Custom.Connhunt.Windows.SysmonNetwork/DNS": [lookup],
                                            "Custom.Connhunt.DNS/WindowsCache": [{**lookup, "pid": None,
                                                                                "source": "velociraptor"}]},
                    client_info={**CLIENT_INFO, "Hostname": "WS-7", "OS": "windows"})
    name, records = read(path)
    connection = rows(records, "connection")[0]
    assert (connection["host"], connection["source"], connection["process_identity"], connection["os"]) == (
        "WS-7", "sysmon", "c:\\users\\public\\x.exe", "windows")
    # every DNS source's answers as sysmon.py reads QueryResults (and as a live pull stores them): addresses only,
    # canonical, so they match connections' remote_ip
    assert [(d["source"], d["pid"], d["query"], d["answers"], d["timestamp"]) for d in rows(records, "dns")] == [
        ("sysmon", 5120, "update.bad.example", ["203.0.113.5"], utc("2026-11-23T00:59:59")),
        ("velociraptor", None, "update.bad.example", ["203.0.113.5"], utc("2026-11-23T00:59:59"))]


def test_stock_linux_netstat(tmp_path: Path) -> None:
    # rows as Linux.Network.Netstat/TCP4 wrote them in a real collection on this machine
    established = {"inode": "98410", "State": "Established", "uid": "0", "ProcessInfo": {
        "Pid": 17127, "Command": "kworkerd\n", "CommandLine": "/dev/shm/kworkerd\u0000-c\u0000203.0.113.5\u0000",
        "Filename": "socket:[98410]", "Type": "socket", "Inode": "98410"}, "LocalAddr": "10.0.0.6",
        "LocalPort": 41000, "RemoteAddr": "203.0.113.5", "RemotePort": 4444}
    listening = {"inode": "624", "State": "Listening", "uid": "0", "ProcessInfo": None, "LocalAddr": "0.0.0.0",
                 "LocalPort": 22, "RemoteAddr": "0.0.0.0", "RemotePort": 0}
    path = make_zip(tmp_path / "web-2.zip", {"Linux.Network.Netstat/TCP4": [listening, established],
                                             "Linux.Network.Netstat/TCP6": []})
    name, records = read(path)
    assert rows(records, "connection") == [{
        "host": "web-2", "host_id": CLIENT_INFO["HostID"], "os": "linux", "collected_at": utc("2026-11-23T01:00:00"),
        "source": "velociraptor", "pid": 17127, "ppid": None, "process_name": "kworkerd", "process_path": None,
        "process_identity": "kworkerd", "command_line": "/dev/shm/kworkerd -c 203.0.113.5", "username": None,
        "process_start": None, "parent_name": None, "parent_path": None, "exe_sha256": None, "protocol": "tcp",
        "family": "ipv4", "local_ip": "10.0.0.6", "local_port": 41000, "remote_ip": "203.0.113.5",
        "remote_port": 4444, "state": "ESTABLISHED", "first_seen": utc("2026-11-23T01:00:00"),
        "last_seen": utc("2026-11-23T01:00:00"), "observations": 1, "remote_hostname": None, "attributed": True,
        "direction": "outbound", "seen_by": "snapshot", "attribution": "pid", "stdio": None}]
    assert rows(records, "listener") == [{
        "host": "web-2", "host_id": CLIENT_INFO["HostID"], "os": "linux", "collected_at": utc("2026-11-23T01:00:00"),
        "source": "velociraptor", "pid": 0, "ppid": None, "process_name": None, "process_path": None,
        "process_identity": "<unknown>", "command_line": None, "username": None, "process_start": None,
        "parent_name": None, "parent_path": None, "exe_sha256": None, "protocol": "tcp", "family": "ipv4",
        "local_ip": "0.0.0.0", "local_port": 22, "first_seen": utc("2026-11-23T01:00:00"),
        "last_seen": utc("2026-11-23T01:00:00"), "observations": 1, "attributed": False}]
    assert health(records) == {}


def test_stock_windows_netstat_enriched(tmp_path: Path) -> None:
    row = {"Pid": 5120, "Ppid": 880, "Name": "x.exe", "Path": "C:\\Users\\Public\\x.exe",
           "CommandLine": "C:\\Users\\Public\\x.exe -k", "Hash": {"MD5": "aa", "SHA1": "bb", "SHA256": "CC" * 32},
           "Username": "CORP\\bob", "Authenticode": {"Trusted": "untrusted"}, "Family": "IPv4", "Type": "TCP",
           "Status": "ESTAB", "Laddr": "192.168.56.10", "Lport": 49712, "Raddr": "203.0.113.5", "Rport": 4444,
           "Timestamp": "2026-11-23T00:59:58Z"}
    udp = {**row, "Type": "UDP", "Status": "", "Raddr": "0.0.0.0", "Rport": 0, "Timestamp": "1601-01-01T00:00:00Z"}
    path = make_zip(tmp_path / "ws-7.zip", {"Windows.Network.NetstatEnriched/Netstat": [row, udp]},
                    client_info={**CLIENT_INFO, "Hostname": "WS-7", "OS": "windows"})
    name, records = read(path)
    connection = rows(records, "connection")[0]
    assert {k: connection[k] for k in ("host", "os", "pid", "ppid", "process_identity", "exe_sha256", "state",
                                       "first_seen", "remote_ip", "remote_port")} == {
        "host": "WS-7", "os": "windows", "pid": 5120, "ppid": 880, "process_identity": "c:\\users\\public\\x.exe",
        "exe_sha256": "cc" * 32, "state": "ESTABLISHED", "first_seen": utc("2026-11-23T00:59:58"),
        "remote_ip": "203.0.113.5", "remote_port": 4444}
    # the unconnected UDP socket is a listener; a Windows socket without a creation time has no first_seen of its own
    assert [(r["protocol"], r["local_port"], r["process_identity"], r["first_seen"])
            for r in rows(records, "listener")] == [
        ("udp", 49712, "c:\\users\\public\\x.exe", utc("2026-11-23T01:00:00"))]
    assert health(records) == {}


def test_unknown_artifact_and_no_client_info(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "host-9.zip", {"Custom.Connhunt.Netstat/Linux": [schema_row(host=None, host_id=None)],
                                              "Custom.Connhunt.Monitor": [schema_row(host=None, host_id=None,
                                                                                     local_port=41002,
                                                                                     event="opened")],
                                              "Generic.Client.Info/BasicInformation": [{"Name": "x"}]},
                    client_info=None)
    name, records = read(path)
    assert [(r["host"], r["host_id"], r["local_port"]) for r in rows(records, "connection")] == [
        ("host-9", "host-9", 41000), ("host-9", "host-9", 41002)]
    assert health(records) == {"host_from_file_name": 1, "unknown_artifact": 1}


def test_bad_member_line_names_zip_member_and_line(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "web-2.zip", {"Custom.Connhunt.Netstat/Linux": [
        schema_row(), schema_row(local_port=1), '{"host": "web-2", "protocol": "tcp"', schema_row(remote_port="x")]})
    member = "results/Custom.Connhunt.Netstat%2FLinux.json"
    error = one_line_error(run_connhunt("score", str(path)), f"{path}!{member}:3: ")
    assert "malformed JSON" in error
    result = run_connhunt("score", str(path), "--skip-bad", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert "skipped 2 bad line(s)" in result.stderr
    assert json.loads(result.stdout)["hunt"]["rows"]["connections"] == 2


def truncate(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def test_truncated_zip_is_a_one_line_error(tmp_path: Path) -> None:
    # incompressible padding so that half the file is well inside the members, before the central directory
    path = make_zip(tmp_path / "web-2.zip", {"Custom.Connhunt.Netstat/Linux": [schema_row()]},
                    extra={"uploads/blob.bin": os.urandom(20000)})
    cut = truncate(path, tmp_path / "cut.zip")
    error = one_line_error(run_connhunt("score", str(cut)), f"{cut}: ")
    assert "not a readable zip" in error


def test_encrypted_collection_says_decrypt_first(tmp_path: Path) -> None:
    path = tmp_path / "Collection-WS-7.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"EncryptedPass": "...", "Scheme": "X509"}))
        archive.writestr("data.zip", os.urandom(200))
    error = one_line_error(run_connhunt("score", str(path)), f"{path}: ")
    assert "encrypted collection" in error


# --- a real collection by the real Velociraptor ------------------------------------------------------------------


@pytest.fixture(scope="module")
def velociraptor_binary() -> Path:
    try:
        result = subprocess.run(["bash", str(ROOT / "tests" / "velociraptor" / "build.sh")], capture_output=True,
                                text=True, timeout=3000)
    except (OSError, subprocess.TimeoutExpired) as exc:
        result = None
        reason = str(exc)
    else:
        reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
    lines = result.stdout.strip().splitlines() if result is not None and result.returncode == 0 else []
    if not lines or not Path(lines[-1]).is_file():
        if IN_CI:
            pytest.fail(f"CI=true, so not skipping: no Velociraptor binary ({reason})", pytrace=False)
        pytest.skip(f"no Velociraptor binary: {reason}")
    return Path(lines[-1])


@pytest.fixture(scope="module")
def real_collection(velociraptor_binary: Path, tmp_path_factory: pytest.TempPathFactory):
    """A Custom.Connhunt.Netstat collection made while this process holds one loopback TCP connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    output = tmp_path_factory.mktemp("vr-offline") / "collection.zip"
    try:
        result = subprocess.run(
            [str(velociraptor_binary), "--nobanner", "--definitions", str(ROOT / "artifacts" / "velociraptor"),
             "artifacts", "collect", "Custom.Connhunt.Netstat", "--output", str(output)],
            capture_output=True, text=True, timeout=600, cwd=output.parent)
        assert result.returncode == 0 and output.is_file(), result.stderr[-3000:]
        yield output, client.getsockname()[1], listener.getsockname()[1]
    finally:
        for sock in (client, accepted, listener):
            sock.close()


@pytest.mark.velociraptor
def test_real_collection_reads_back_this_process_connection(real_collection) -> None:
    path, client_port, server_port = real_collection
    name, records = read(path)
    assert name == "velociraptor"
    with zipfile.ZipFile(path) as archive:
        info = json.loads(archive.read("client_info.json"))
    mine = [r for r in rows(records, "connection")
            if (r["local_port"], r["remote_port"]) in ((client_port, server_port), (server_port, client_port))]
    assert len(mine) == 2, f"expected both ends of 127.0.0.1:{client_port}<->{server_port}"
    executable = os.path.realpath(f"/proc/{os.getpid()}/exe")
    command_line = " ".join(Path(f"/proc/{os.getpid()}/cmdline").read_text().split("\0")).strip()
    for row in mine:
        assert row == {
            **row,  # times and the parent's details vary per run; everything that identifies us is compared
            "host": info["Hostname"], "host_id": info["HostID"], "os": "linux", "source": "velociraptor",
            "pid": os.getpid(), "ppid": os.getppid(), "process_path": executable, "process_identity": executable,
            "process_name": Path(f"/proc/{os.getpid()}/comm").read_text().strip(), "command_line": command_line,
            "username": pwd.getpwuid(os.getuid()).pw_name, "protocol": "tcp", "family": "ipv4",
            "local_ip": "127.0.0.1", "remote_ip": "127.0.0.1", "state": "ESTABLISHED", "observations": 1,
            "attributed": True}
        assert row["first_seen"] is not None and row["process_start"] is not None
    # Linux, Windows and MacOS sources all ran (local collect ignores source preconditions): Linux's is read
    assert health(records)["other_os_source"] == 2
    # each owned socket once (ownerless TIME_WAIT sockets of a busy machine can repeat a 4-tuple across families)
    owned = [r for r in rows(records, "connection") if r["pid"]]
    assert len({(r["pid"], r["local_port"], r["remote_ip"], r["remote_port"]) for r in owned}) == len(owned)


@pytest.mark.velociraptor
def test_real_collection_scores_and_truncated_copy_fails_cleanly(real_collection, tmp_path: Path) -> None:
    path, _, _ = real_collection
    document = score_json(path)
    assert document["hunt"]["sources"] == [f"velociraptor:{path}"]
    assert document["hunt"]["rows"]["connections"] >= 2
    cut = truncate(path, tmp_path / "collection-cut.zip")
    error = one_line_error(run_connhunt("score", str(cut)), str(cut))
    assert "truncated or damaged" in error


def test_damaged_member_names_zip_and_member(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "web-2.zip", {"Custom.Connhunt.Netstat/Linux": [
        schema_row(local_port=40000 + i, command_line=os.urandom(30).hex()) for i in range(200)]})
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("results/Custom.Connhunt.Netstat%2FLinux.json")
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    data[middle: middle + 16] = bytes(b ^ 0xFF for b in data[middle: middle + 16])
    path.write_bytes(bytes(data))
    member = f"{path}!results/Custom.Connhunt.Netstat%2FLinux.json"
    # the damaged bytes inflate to garbage lines first; the CRC-32 check at the member's end catches the rest
    one_line_error(run_connhunt("score", str(path)), member)
    error = one_line_error(run_connhunt("score", str(path), "--skip-bad"), member)
    assert "truncated or damaged" in error


def test_stock_netstat_enriched_tells_inbound_from_the_collections_listeners(tmp_path: Path) -> None:
    """Linux.Network.NetstatEnriched rows (connections() joined to the process tracker): LISTEN rows are listeners,
    and a connected socket on a listening port is a client of that service."""
    sshd = {"Name": "sshd", "Exe": "/usr/sbin/sshd", "CommandLine": "sshd: /usr/sbin/sshd -D", "Username": "root",
            "Ppid": 1, "Pid": 812}
    implant = {"Name": "kworkerd", "Exe": "/dev/shm/kworkerd", "CommandLine": "/dev/shm/kworkerd", "Username": "www",
               "Ppid": 1, "Pid": 4242}
    listen = {"Laddr": "0.0.0.0", "Lport": 22, "Raddr": "0.0.0.0", "Rport": 0, "Pid": 812, "Status": "LISTEN",
              "ProcInfo": sshd, "CallChain": "systemd -> sshd", "ChildrenTree": {}}
    client = {**listen, "Laddr": "10.0.0.6", "Raddr": "198.51.100.23", "Rport": 40112, "Status": "ESTABLISHED"}
    beacon = {"Laddr": "10.0.0.6", "Lport": 41000, "Raddr": "203.0.113.5", "Rport": 4444, "Pid": 4242,
              "Status": "ESTABLISHED", "ProcInfo": implant, "CallChain": "systemd -> kworkerd", "ChildrenTree": {}}
    # the listener comes last: direction is decided over the whole collection, not row by row
    path = make_zip(tmp_path / "web-2.zip", {"Linux.Network.NetstatEnriched": [client, beacon, listen]})
    _, records = read(path)
    assert [(r["process_path"], r["local_port"], r["remote_ip"], r["remote_port"], r["direction"], r["username"])
            for r in rows(records, "connection")] == [
        ("/usr/sbin/sshd", 22, "198.51.100.23", 40112, "inbound", "root"),
        ("/dev/shm/kworkerd", 41000, "203.0.113.5", 4444, "outbound", "www")]
    assert [(r["process_path"], r["local_ip"], r["local_port"], r["pid"]) for r in rows(records, "listener")] == [
        ("/usr/sbin/sshd", "0.0.0.0", 22, 812)]


def test_stock_windows_netstat_flat_columns(tmp_path: Path) -> None:
    """Windows.Network.Netstat selects Laddr.IP etc. without aliases: VQL names those columns "Laddr.IP"."""
    row = {"Pid": 5120, "Name": "x.exe", "Family": "IPv4", "Type": "TCP", "Status": "ESTAB", "Laddr.IP": "10.0.0.7",
           "Laddr.Port": 49712, "Raddr.IP": "203.0.113.5", "Raddr.Port": 4444, "Timestamp": "2026-11-23T00:59:58Z"}
    path = make_zip(tmp_path / "ws-7.zip", {"Windows.Network.Netstat": [row]},
                    client_info={**CLIENT_INFO, "Hostname": "WS-7", "OS": "windows"})
    _, records = read(path)
    assert [(r["process_identity"], r["local_ip"], r["local_port"], r["remote_ip"], r["remote_port"], r["state"],
             r["direction"], r["first_seen"]) for r in rows(records, "connection")] == [
        ("x.exe", "10.0.0.7", 49712, "203.0.113.5", 4444, "ESTABLISHED", "outbound", utc("2026-11-23T00:59:58"))]


def _hunt_export(path: Path, clients: dict[str, list[dict[str, Any]]], *, folders: bool = True) -> Path:
    """A hunt export as create_hunt_download writes it (vql/server/downloads): hunt_info.json, the combined
    results/All <Artifact>%2F<Source>.json with FlowId/ClientId/Fqdn columns, and per flow a
    <hostname>-<client id>/ folder holding the server's client record and the flow's results."""
    source = "Custom.Connhunt.Netstat%2FLinux"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("hunt_info.json", json.dumps({"hunt_id": "H.TEST", "artifacts": ["Custom.Connhunt.Netstat"]}))
        combined = [{**row, "FlowId": f"F.{i}", "ClientId": client, "Fqdn": row["host"]}
                    for i, (client, client_rows) in enumerate(sorted(clients.items())) for row in client_rows]
        archive.writestr(f"results/All {source}.json", "".join(json.dumps(r) + "\n" for r in combined))
        if folders:
            for client, client_rows in clients.items():
                folder = f"{client_rows[0]['host']}-{client}/"
                archive.writestr(folder + "client_info.json", json.dumps(
                    {"client_id": client, "hostname": client_rows[0]["host"], "system": "linux"}))
                archive.writestr(folder + "collection_context.json", json.dumps(
                    {"session_id": "F.X", "create_time": T0 * 10**9, "state": "FINISHED"}))
                archive.writestr(folder + f"results/{source}.json", "".join(json.dumps(r) + "\n" for r in client_rows))
    return path


@pytest.mark.parametrize("folders", [True, False], ids=["per-client folders", "combined only"])
def test_hunt_export_one_host_per_client(tmp_path: Path, folders: bool) -> None:
    web = schema_row(host="web-2")
    db = schema_row(host="db-1", host_id="other-machine-id", pid=77, local_port=41001)
    path = _hunt_export(tmp_path / "hunt.zip", {"C.aaaa1111": [web], "C.bbbb2222": [db]}, folders=folders)
    _, records = read(path)
    stored = sorted(rows(records, "connection"), key=lambda r: r["host"])
    # the client id is the fleet's host key, as a live pull stores it; each row once (the combined copy is not read
    # when the folders are there)
    assert [(r["host"], r["host_id"], r["pid"], r["local_port"]) for r in stored] == [
        ("db-1", "C.bbbb2222", 77, 41001), ("web-2", "C.aaaa1111", 4242, 41000)]
    expected_web = read(make_zip(tmp_path / "web.zip", {"Custom.Connhunt.Netstat/Linux": [web]}))[1]
    assert stored[1] == {**rows(expected_web, "connection")[0], "host_id": "C.aaaa1111"}
    assert health(records) == {}


@pytest.mark.velociraptor
def test_real_stock_netstat_enriched_collection(velociraptor_binary: Path, tmp_path: Path) -> None:
    """Velociraptor's own Linux.Network.NetstatEnriched, collected for real while this process listens and holds
    both ends of a loopback connection: a listener row, the served end inbound, the client end outbound."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    server_port, client_port = listener.getsockname()[1], client.getsockname()[1]
    output = tmp_path / "stock.zip"
    try:
        result = subprocess.run([str(velociraptor_binary), "--nobanner", "artifacts", "collect",
                                 "Linux.Network.NetstatEnriched", "--output", str(output)],
                                capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert result.returncode == 0 and output.is_file(), result.stderr[-3000:]
    finally:
        for sock in (client, accepted, listener):
            sock.close()
    _, records = read(output)
    executable = os.path.realpath(f"/proc/{os.getpid()}/exe")
    mine = sorted((r["local_port"], r["remote_port"], r["direction"], r["process_path"], r["pid"], r["username"])
                   for r in rows(records, "connection") if {r["local_port"], r["remote_port"]} ==
                   {server_port, client_port})
    user = pwd.getpwuid(os.getuid()).pw_name
    assert mine == sorted([(server_port, client_port, "inbound", executable, os.getpid(), user),
                           (client_port, server_port, "outbound", executable, os.getpid(), user)])
    listening = [(r["local_ip"], r["process_path"], r["attributed"]) for r in rows(records, "listener")
                 if r["local_port"] == server_port]
    assert listening == [("127.0.0.1", executable, True)]
