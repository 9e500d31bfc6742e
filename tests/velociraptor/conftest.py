"""Fixtures for the tests that run against a real Velociraptor server and client on loopback.

`velociraptor` (session scope) builds or reuses the pinned binary, starts a frontend and one client on this
machine, waits until the client is enrolled and interrogated, and tears both down at the end of the session.
Without Go or root the tests skip, except under CI=true, where a missing prerequisite is a failure.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402 - the directory is put on sys.path just above

IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true, so not skipping: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def velociraptor_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log = tmp_path_factory.mktemp("vr-build") / "build.log"
    try:
        return harness.find_binary(build=True, log_path=log)
    except harness.BinaryUnavailable as exc:
        _unavailable(str(exc))
    except harness.HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def velociraptor(velociraptor_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Velociraptor]:
    if os.geteuid() != 0:
        _unavailable("the Velociraptor client needs root to see every process's sockets")
    tmp = tmp_path_factory.mktemp("velociraptor")
    try:
        vr = harness.prepare(velociraptor_binary, tmp)
    except harness.HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        try:
            vr.start_server()
            vr.start_client()
            vr.wait_enrolled(timeout=180)
        except harness.HarnessError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield vr
    finally:
        vr.stop_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failing velociraptor test, append the server and client log tails to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "velociraptor" in getattr(item, "funcargs", {}):
        vr = item.funcargs["velociraptor"]
        report.sections.append(("velociraptor logs", vr.logs_tail()))
