"""Fuzzing the intel loaders: whatever the bytes, a loader yields rows or raises one InputError, and soon."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import InputError
from orchestrator.intel import IOC_KINDS, load_intel
from tests.intel.helpers import DATA

FIXTURES = sorted(p for p in DATA.rglob("*") if p.is_file() and p.suffix in (".json", ".csv", ".txt"))
# no example database: a run leaves nothing behind in the checkout
FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
LIMIT_S = 5.0  # one small input must never take longer than this


def outcome(data: bytes, suffix: str = ".dat") -> list[dict]:
    """Rows of a file holding ``data``, or [] after an InputError (anything else escapes and fails the test)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"intel{suffix}"
        path.write_bytes(data)
        started = time.monotonic()
        try:
            rows = [dict(r) for r in load_intel([path])]
        except InputError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(str(path))
            rows = []
        assert time.monotonic() - started < LIMIT_S
    for row in rows:
        assert row["kind"] in IOC_KINDS and row["value"]
    return rows


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    outcome(data)


@FUZZ
@given(st.sampled_from(FIXTURES), st.data())
def test_fixtures_cut_and_corrupted(fixture: Path, data: st.DataObject) -> None:
    raw = fixture.read_bytes()
    cut = data.draw(st.integers(0, len(raw)))
    at = data.draw(st.integers(0, max(0, cut - 1)))
    junk = data.draw(st.binary(max_size=8))
    outcome(raw[:at] + junk + raw[at + len(junk):cut])


LINE = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=80)


@FUZZ
@given(st.sampled_from(["", '# "first_seen_utc","ioc_id","ioc_value","ioc_type","threat_type"\n',
                        '"first_seen_utc","dst_ip","dst_port","c2_status","last_online","malware"\n',
                        "# abuse.ch Feodo Tracker Botnet C2 IP Blocklist (recommended)\n"]),
       st.lists(LINE, max_size=20))
def test_text_formats_with_random_lines(header: str, lines: list[str]) -> None:
    outcome((header + "\n".join(lines)).encode())


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                max_size=4), max_leaves=20)
_ATTRIBUTE_KEYS = st.sampled_from(["type", "value", "to_ids", "uuid", "first_seen", "last_seen", "Tag", "deleted"])


@FUZZ
@given(st.dictionaries(_ATTRIBUTE_KEYS, JSON | st.sampled_from(["ip-dst|port", "domain|ip", "sha256", "url", True])),
       JSON)
def test_misp_shaped_json(attribute: dict, extra: object) -> None:
    outcome(json.dumps({"Event": {"info": extra, "Attribute": [attribute], "Object": [{"Attribute": [attribute]}]}},
                       default=str).encode(), ".json")


@FUZZ
@given(st.text(max_size=120), st.sampled_from(["2.1", "2.0", None]), JSON)
def test_stix_indicator_patterns(pattern: str, version: str | None, confidence: object) -> None:
    indicator = {"type": "indicator", "id": "indicator--0d417137-c3f9-40e2-b53d-35e93dd16091",
                 "created": "2026-10-01T08:00:00.000Z", "modified": "2026-10-01T08:00:00.000Z",
                 "valid_from": "2026-10-01T00:00:00Z", "pattern": pattern, "pattern_type": "stix",
                 "confidence": confidence}
    if version:
        indicator["spec_version"] = version
    outcome(json.dumps({"type": "bundle", "id": "bundle--1", "objects": [indicator]}).encode(), ".json")


@FUZZ
@given(st.lists(st.sampled_from(["ipv4-addr:value", "ipv6-addr:value", "domain-name:value", "url:value",
                                 "file:hashes.'SHA-256'", "file:hashes.MD5", "network-traffic:dst_ref.value",
                                 "network-traffic:dst_port", "file:name"]), min_size=1, max_size=6),
       st.lists(st.sampled_from([" AND ", " OR "]), min_size=6, max_size=6),
       st.lists(st.sampled_from(["'192.0.2.1'", "'2001:db8::1'", "'a.example'", "'http://a.example/'", "4444",
                                 "'x'", "'198.51.100.0/24'"]), min_size=6, max_size=6),
       st.booleans())
def test_stix_well_formed_combinations(paths: list[str], joins: list[str], values: list[str], split: bool) -> None:
    parts = [f"{p} = {v}" for p, v in zip(paths, values)]
    if split:
        pattern = " ".join(f"[{part}]" if i == 0 else f"{joins[i].strip()} [{part}]" for i, part in enumerate(parts))
    else:
        pattern = "[" + "".join(part if i == 0 else joins[i] + part for i, part in enumerate(parts)) + "]"
    bundle = {"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--0d417137-c3f9-40e2-b53d-35e93dd16091",
         "created": "2026-10-01T08:00:00.000Z", "modified": "2026-10-01T08:00:00.000Z",
         "valid_from": "2026-10-01T00:00:00Z", "pattern": pattern, "pattern_type": "stix"}]}
    for row in outcome(json.dumps(bundle).encode(), ".json"):
        assert f"'{row['value']}'" in pattern  # every value comes from the pattern, canonical as written there
