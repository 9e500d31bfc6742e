"""Every Windows-event reader fuzzed: random bytes, cut files, wrongly typed, deeply nested and huge fields.

The property is the bad-input rule: a reader either yields records or raises InputError (one located line), never
anything else and never hangs; with skip_bad it reports each bad unit as ``file:line`` (or ``file: record N``) and
still yields the good ones. Each test is bounded in examples and in time.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import InputError
from orchestrator.sources import read_any
from tests.sources.helpers import DATA

WINDOWS = DATA / "windows"
JSON_FORMATS = [("nxlog", "nxlog.jsonl"), ("winlogbeat", "winlogbeat.ndjson"), ("splunk-json", "splunk_results.json"),
                ("sysmon-json", "evtxecmd.json"), ("sysmon-json", "../sysmon_evtx_dump.jsonl")]
ALL_FORMATS = [*JSON_FORMATS, ("splunk-csv", "splunk_export.csv")]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20)
odd_values = st.one_of(
    json_values,
    st.builds(lambda unit, n: unit * n, st.sampled_from(["A", "\\", "9", "é"]),
              st.integers(min_value=1_000, max_value=2_000_000)),  # huge
    st.integers(min_value=-(2**70), max_value=2**70),
    st.just("-"), st.just(""), st.just("0x1f"), st.just("%%14592"), st.just("\\device\\harddiskvolume9\\x.exe"),
)


def drain(path: Path, input_format: str, *, skip_bad: bool) -> tuple[list[Any], list[str]]:
    """Read ``path`` fully; only InputError may escape (it is the one located line the CLI prints)."""
    skipped: list[str] = []
    try:
        records = list(read_any(path, input_format=input_format, skip_bad=skip_bad, on_skip=skipped.append)[1])
    except InputError as exc:
        assert str(exc).startswith(str(path)), exc
        assert "\n" not in str(exc)
        return [], skipped
    return records, skipped


def located(messages: list[str], path: Path) -> None:
    for message in messages:
        assert message.startswith(f"{path}:") or message.startswith(f"{path}: record"), message


def in_file(content: bytes, name: str, body: Callable[[Path], None]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        body(path)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("input_format", "fixture"), [*ALL_FORMATS, ("evtx", None)])
@FUZZ
@given(content=st.binary(max_size=4096))
def test_random_bytes(input_format: str, fixture: str | None, content: bytes) -> None:
    def check(path: Path) -> None:
        for skip_bad in (False, True):
            _, skipped = drain(path, input_format, skip_bad=skip_bad)
            located(skipped, path)

    in_file(content, "random.bin", check)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("input_format", "fixture"), ALL_FORMATS)
@FUZZ
@given(data=st.data())
def test_truncated_files_keep_what_was_read(input_format: str, fixture: str, data: st.DataObject) -> None:
    whole = (WINDOWS / fixture).read_bytes()
    cut = data.draw(st.integers(min_value=0, max_value=len(whole) - 1))
    # the file as it would be had it stopped at the last whole line before the cut
    prefix = whole[:whole.rfind(b"\n", 0, cut) + 1]

    end = whole.find(b"\n", cut)
    completed = whole if end < 0 else whole[:end + 1]  # the cut line made whole again

    def check(path: Path) -> None:
        records, skipped = drain(path, input_format, skip_bad=True)
        located(skipped, path)
        # the cut line is lost, or read whole when the cut took nothing it needs (a CSV field's closing quote);
        # everything before it is read exactly as if the file had ended there
        before = _rows_of(prefix, path.name, input_format)
        assert _rows(records) in (before, _rows_of(completed, path.name, input_format))

    in_file(whole[:cut], fixture.rsplit("/", 1)[-1], check)


def _rows(records: list[Any]) -> list[str]:
    return sorted(json.dumps(row, default=str, sort_keys=True) for kind, row in records if kind != "health")


def _rows_of(content: bytes, name: str, input_format: str) -> list[str]:
    found: list[list[str]] = []
    in_file(content, name, lambda path: found.append(_rows(drain(path, input_format, skip_bad=True)[0])))
    return found[0]


def _mutate(event: Any, path: list[Any], value: Any) -> Any:
    """``event`` with the field reached by following ``path`` (indices into keys) replaced by ``value``."""
    if not path or not isinstance(event, (dict, list)) or not event:
        return value
    if isinstance(event, dict):
        key = list(event)[path[0] % len(event)]
        return {**event, key: _mutate(event[key], path[1:], value)}
    index = path[0] % len(event)
    return [*event[:index], _mutate(event[index], path[1:], value), *event[index + 1:]]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("input_format", "fixture"), JSON_FORMATS)
@FUZZ
@given(data=st.data())
def test_wrongly_typed_fields_are_located_bad_lines(input_format: str, fixture: str, data: st.DataObject) -> None:
    lines = (WINDOWS / fixture).read_text().splitlines()
    number = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
    route = data.draw(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=4))
    value = data.draw(odd_values)
    mutated = json.dumps(_mutate(json.loads(lines[number]), route, value))
    content = "\n".join([*lines[:number], mutated, *lines[number + 1:]]) + "\n"

    def check(path: Path) -> None:
        records, skipped = drain(path, input_format, skip_bad=True)
        located(skipped, path)
        assert len(skipped) <= 1
        if skipped:
            assert skipped[0].startswith(f"{path}:{number + 1}: ")
        # every other line is still read: no record is lost to one bad line
        assert records, "the good lines were dropped"
        _, strict = drain(path, input_format, skip_bad=False)
        assert strict == []

    in_file(content.encode(), fixture.rsplit("/", 1)[-1], check)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("input_format", "fixture"), JSON_FORMATS)
def test_deeply_nested_line(tmp_path: Path, input_format: str, fixture: str) -> None:
    lines = (WINDOWS / fixture).read_text().splitlines()
    path = tmp_path / "nested.jsonl"
    path.write_text("\n".join([lines[0], "[" * 200_000 + "]" * 200_000, *lines[1:]]) + "\n")
    records, skipped = drain(path, input_format, skip_bad=True)
    assert skipped == [f"{path}:2: JSON nested too deeply"]
    assert records
    with pytest.raises(InputError, match=f"^{path}:2: JSON nested too deeply$"):
        list(read_any(path, input_format=input_format)[1])


@pytest.mark.timeout(300)
@FUZZ
@given(data=st.data())
def test_splunk_raw_xml_mangled(data: st.DataObject) -> None:
    lines = (WINDOWS / "splunk_results.json").read_text().splitlines()
    number = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
    line = json.loads(lines[number])
    raw = line["result"]["_raw"]
    at = data.draw(st.integers(min_value=0, max_value=len(raw)))
    junk = data.draw(st.text(max_size=30) | st.sampled_from(["<", "&", "]]>", "<!ENTITY a 'b'>", "</Event>",
                                                            "<Data Name='ProcessId'>x</Data>", "\x00"]))
    line["result"]["_raw"] = raw[:at] + junk + raw[at:]
    content = "\n".join([*lines[:number], json.dumps(line), *lines[number + 1:]]) + "\n"

    def check(path: Path) -> None:
        records, skipped = drain(path, "splunk-json", skip_bad=True)
        located(skipped, path)
        assert records

    in_file(content.encode(), "results.json", check)


@pytest.mark.timeout(300)
@FUZZ
@given(data=st.data())
def test_evtx_with_damaged_bytes(data: st.DataObject) -> None:
    from tests.sources.test_windows_events import scenario_evtx

    with tempfile.TemporaryDirectory() as folder:
        good = scenario_evtx(Path(folder) / "good.evtx").read_bytes()
        damaged = bytearray(good)
        for _ in range(data.draw(st.integers(min_value=1, max_value=8))):
            at = data.draw(st.integers(min_value=0, max_value=len(good) - 1))
            damaged[at] = data.draw(st.integers(min_value=0, max_value=255))
        cut = data.draw(st.sampled_from([len(good), len(good) - 1, 4096 + 600, 5000]))
        in_file(bytes(damaged[:cut]), "damaged.evtx", lambda path: located(
            drain(path, "evtx", skip_bad=True)[1], path))
