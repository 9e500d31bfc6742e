"""Fleet hunts against the real server and client: checked before launch, immediate on online clients, resumable
when the server has forgotten the hunt, and stored exactly as a hunt export of the same rows reads back.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from orchestrator import fleet_hunt
from orchestrator.sources.velociraptor_offline import read_velociraptor_zip
from orchestrator.store import Store
from orchestrator.velociraptor import api, pull
from tests.velociraptor.planted import run_cli

pytestmark = pytest.mark.velociraptor

PYTHON = sys.executable


def _hunt_ids(client: api.VelociraptorClient) -> set[str]:
    return {r["hunt_id"] for r in client.query("SELECT hunt_id FROM hunts()")}


def _one_line(proc: subprocess.CompletedProcess[str], code: int, *must: str) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("connhunt: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for text in must:
        assert text in lines[0], (text, lines[0])
    return lines[0]


@pytest.fixture
def pushed(velociraptor) -> str:
    with api.connect(velociraptor.api_config) as client:
        api.push_artifacts(client)
    return str(velociraptor.api_config)


def test_bad_db_and_unmatched_label_fail_before_any_hunt_exists(velociraptor, pushed: str, tmp_path: Path) -> None:
    held = tmp_path / "held.duckdb"
    holder = subprocess.Popen([PYTHON, "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); sys.stdin.read()", str(held)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with api.connect(pushed) as client:
            before = _hunt_ids(client)
        cases = [(tmp_path, "is a directory"), (Path("/proc/connhunt-no-such/hunt.duckdb"), "cannot create"),
                 (held, "in use by another process")]
        for db, says in cases:
            started = time.monotonic()
            proc = run_cli("hunt", "--api-config", pushed, "--db", str(db), "--wait", "300", tmp=tmp_path)
            _one_line(proc, 2, f"--db {db}", says)
            assert time.monotonic() - started < 60
        started = time.monotonic()
        proc = run_cli("hunt", "--api-config", pushed, "--label", "connhunt-no-client-has-this", "--wait", "300",
                       tmp=tmp_path)
        _one_line(proc, 2, "label 'connhunt-no-client-has-this'", "nothing to hunt")
        assert time.monotonic() - started < 60, "a label that matches no client must not wait --wait"
        assert "resume" not in proc.stderr
        with api.connect(pushed) as client:
            assert _hunt_ids(client) == before, "a hunt was launched although its database or targets were bad"
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)


def test_hunt_is_immediate_on_an_online_client_and_params_reach_the_artifact(velociraptor, pushed: str,
                                                                             tmp_path: Path) -> None:
    """The client polls every second here, yet the hunt must not wait for its hunt check: hunt_add schedules it.
    --param reaches the artifact as data: only python's sockets, and no listeners."""
    with api.connect(pushed) as client:
        seen = {c.client_id: c for c in api.list_clients(client)}[velociraptor.client_id]
    assert fleet_hunt.online([seen]) == [seen]
    db = tmp_path / "hunt.duckdb"
    started = time.monotonic()
    proc = run_cli("hunt", "--api-config", pushed, "--db", str(db), "--wait", "120", "--format", "json",
                   "--min-risk", "low", "--param", "ProcessNameRegex=^python", "--param", "IncludeListening=N",
                   tmp=tmp_path)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    print(f"hunt on one online client: {elapsed:.1f}s end to end (CLI start to report)")
    assert elapsed < 45, f"hunt took {elapsed:.1f}s"
    notes = json.loads(proc.stdout)["hunt"]["notes"]
    assert any("1 client(s) targeted, 1 online, 1 scheduled, 1 finished, 0 with errors" in n for n in notes), notes
    with Store(db) as store:
        names = {r["process_name"] for r in store.query("SELECT DISTINCT process_name FROM connections "
                                                        "WHERE attributed")}
        assert names and all(n.startswith("python") for n in names), names
        assert store.count("listeners") == 0
        ledger = store.query(f"SELECT hunt_id, client_id FROM {pull.LEDGER}")
    assert [r["client_id"] for r in ledger] == [velociraptor.client_id]
    with api.connect(pushed) as client:
        flows = api.hunt_flows(client, ledger[0]["hunt_id"])
    assert len(flows) == 1, "hunt_add and the hunt's own scheduling must not both run the flow"


def test_live_pull_and_hunt_export_store_identical_rows(velociraptor, pushed: str, tmp_path: Path) -> None:
    """The same hunt's rows, pulled over the API and read from the server's own hunt export zip, are the same
    rows: one mapping for both paths (connections and listeners, client id as host_id)."""
    live = tmp_path / "live.duckdb"
    proc = run_cli("hunt", "--api-config", pushed, "--db", str(live), "--wait", "120", "--format", "json",
                   tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with Store(live) as store:
        hunt_id = store.query(f"SELECT hunt_id FROM {pull.LEDGER}")[0]["hunt_id"]
    with api.connect(pushed) as client:
        rows = client.query("SELECT create_hunt_download(hunt_id=HuntId, wait=TRUE, format='json') AS path "
                            "FROM scope()", {"HuntId": hunt_id}, timeout=300)
    relative = str(rows[0]["path"]).removeprefix("fs:").lstrip("/")  # a filestore path spec
    exported = velociraptor.tmp / "filestore" / relative
    assert exported.is_file(), (rows, sorted(p.name for p in (velociraptor.tmp / "filestore").rglob("*.zip")))
    copy = tmp_path / "export.zip"
    shutil.copy(exported, copy)
    with Store() as offline:
        records = list(read_velociraptor_zip(copy))
        for kind, table in (("connection", "connections"), ("listener", "listeners")):
            offline.insert(table, [row for k, row in records if k == kind])
        with Store(live) as store:
            for table in ("connections", "listeners"):
                query = f"SELECT * FROM {table} ORDER BY ALL"
                pulled_rows, read_rows = store.query(query), offline.query(query)
                assert pulled_rows, table
                assert pulled_rows == read_rows, table
    assert {r["host_id"] for k, r in records if k != "health"} == {velociraptor.client_id}


def _forget_hunt(velociraptor, hunt_id: str) -> list[Path]:
    """Remove the hunt's own record from the stopped server's datastore, leaving its flows (as a server that lost
    its hunt index does). Returns what was removed."""
    datastore = velociraptor.tmp / "datastore"
    removed = [p for p in datastore.rglob(f"{hunt_id}*") if "clients" not in p.relative_to(datastore).parts]
    for path in removed:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed


def test_resume_after_the_server_restarted_and_forgot_the_hunt(velociraptor, pushed: str, tmp_path: Path) -> None:
    with api.connect(pushed) as client:
        hunt_id = api.create_hunt(client, expires="30m")
        api.add_to_hunt(client, hunt_id, velociraptor.client_id)
        deadline = time.monotonic() + 120
        while not (flows := api.hunt_flows(client, hunt_id)) or not all(api.flow_done(f) for f in flows):
            assert time.monotonic() < deadline, flows
            time.sleep(1)
        served = sum(f.rows for f in flows)
    velociraptor.stop("frontend")
    try:
        removed = _forget_hunt(velociraptor, hunt_id)
    finally:
        velociraptor.start_server()
    assert removed, "found no hunt record to remove"
    with api.connect(pushed) as client:
        deadline = time.monotonic() + 60
        while True:  # the API comes up before every service is ready
            try:
                forgotten = hunt_id not in _hunt_ids(client) and bool(api.hunt_flows(client, hunt_id))
                break
            except api.VelociraptorError:
                assert time.monotonic() < deadline
                time.sleep(1)
    assert forgotten, "the restarted server still knows the hunt: the fallback would not be exercised"
    db = tmp_path / "resumed.duckdb"
    proc = run_cli("hunt", "--resume", hunt_id, "--api-config", pushed, "--db", str(db), "--wait", "60",
                   "--format", "json", tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with Store(db) as store:
        stored = store.count("connections") + store.count("listeners")
        ledger = store.query(f"SELECT client_id, rows FROM {pull.LEDGER}")
    assert stored == served and [r["client_id"] for r in ledger] == [velociraptor.client_id]
    again = run_cli("hunt", "--resume", hunt_id, "--api-config", pushed, "--db", str(db), "--wait", "60",
                    "--format", "json", tmp=tmp_path)
    assert again.returncode == 0, again.stderr
    with Store(db) as store:
        assert store.count("connections") + store.count("listeners") == served  # exactly once


def test_clients_lists_last_seen_in_utc(velociraptor, tmp_path: Path) -> None:
    proc = run_cli("clients", "--api-config", str(velociraptor.api_config), tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = [line for line in proc.stdout.splitlines() if line.startswith(velociraptor.client_id)][0]
    seen = line.split("\t")[-1]
    assert seen.endswith(" UTC"), line
    parsed = time.mktime(time.strptime(seen, "%Y-%m-%d %H:%M:%S UTC")) - time.timezone
    assert abs(parsed - time.time()) < 120, seen
    bad = run_cli("clients", "--api-config", str(velociraptor.api_config), "--format", "yaml", tmp=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_duckdb_lock_is_what_the_db_check_sees(tmp_path: Path) -> None:
    """The 'in use' message rests on DuckDB refusing a second writer process; check that premise here."""
    path = tmp_path / "x.duckdb"
    con = duckdb.connect(str(path))
    try:
        proc = subprocess.run([PYTHON, "-c", "import sys; from orchestrator.fleet_hunt import open_database; "
                               "from pathlib import Path; open_database(Path(sys.argv[1]))", str(path)],
                              capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    finally:
        con.close()
    assert proc.returncode != 0 and "in use by another process" in proc.stderr
