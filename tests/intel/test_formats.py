"""Each intel format read from a file in its producer's documented layout, compared row by row."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.intel import IOC_COLUMNS, load_intel, sniff
from tests.intel.helpers import DATA, expected, load, utc

STIX = DATA / "stix_bundle.json"


def test_rows_carry_every_declared_column() -> None:
    row = next(iter(load_intel([DATA / "iocs.txt"])))
    assert list(row) == [name for name, _ in IOC_COLUMNS]


def test_stix_bundle_indicators_become_rows_with_or_and_semantics() -> None:
    rows, notes = load(STIX)
    ip_indicator = dict(indicator_id="indicator--0d417137-c3f9-40e2-b53d-35e93dd16091", name="InventedRAT",
                        description="Command and control servers of InventedRAT", confidence=85,
                        valid_from=utc("2026-10-01T00:00:00"), valid_until=utc("2027-01-01T00:00:00"),
                        tags=["c2", "malicious-activity"], reference="https://cert.example/reports/inventedrat")
    domain_indicator = dict(indicator_id="indicator--472c9970-5008-4dc0-b921-3ff111e82eae",
                            name="InventedRAT C2 domain and gate URL", valid_from=utc("2026-10-01T00:00:00"),
                            tags=["malicious-activity"])
    loader = dict(indicator_id="indicator--43bf0c10-75f7-47b3-96c6-628e4e657daa", name="InventedRAT loader",
                  confidence=100, valid_from=utc("2026-10-01T00:00:00"))
    followed = dict(indicator_id="indicator--e685d72e-b9b4-406c-b766-96f1b1164531", name="Download then callback",
                    valid_from=utc("2026-10-01T00:00:00"), conjunctive=True)
    assert rows == [
        # the malware the indicator `indicates` names the threat; OR keeps each part a whole match
        expected("ipv4", "198.51.100.23", STIX, "stix", **ip_indicator),
        expected("ipv4", "203.0.113.64/27", STIX, "stix", network=True, **ip_indicator),
        # trailing dot and case dropped from the domain; the URL keeps its text and exposes its host
        expected("domain", "c2.invented-rat.example", STIX, "stix", **domain_indicator),
        expected("url", "http://c2.invented-rat.example:8080/gate.php", STIX, "stix",
                 host="c2.invented-rat.example", **domain_indicator),
        # two hashes of one file ANDed: each identifies the file alone
        expected("sha256", "8fc3dcdca4f65e34020049f2e87a3bc4288fdf434e015223e478fc0333b557a2", STIX, "stix",
                 **loader),
        expected("md5", "c3ad84aff354d8f0c637a274f0f3d820", STIX, "stix", **loader),
        # network-traffic: the ref's value with the port it is ANDed with; the ref's type check constrains nothing
        expected("ipv6", "2001:db8::dead", STIX, "stix", port=4444,
                 indicator_id="indicator--8a41a62a-0516-458f-90b5-ba11882f164d", name="InventedRAT IPv6 handler",
                 valid_from=utc("2026-10-01T00:00:00")),
        # FOLLOWEDBY: each part alone is only part of the indicator
        expected("sha1", "d525dec0d858cb940d7332fdcf554a3224500f0c", STIX, "stix", **followed),
        expected("ipv4", "192.0.2.77", STIX, "stix", **followed),
    ]
    assert notes == [
        f"{STIX}: skipped 1 indicator(s): pattern compares nothing connhunt can match (address, domain, URL, file "
        f"hash) (first at {STIX}: indicator--ddde9971-8265-49c3-bb6b-6fee9ea683e7)",
        f"{STIX}: skipped 1 indicator(s): pattern_type 'yara' is not a STIX pattern "
        f"(first at {STIX}: indicator--ade5810d-f504-4749-a64f-6ee309c0ba61)",
        f"{STIX}: skipped 1 indicator(s): revoked (first at {STIX}: indicator--b50b44fc-fd2a-438b-bcbf-bafbf8e1cb1e)",
    ]


def test_stix_in_list_and_repeats(tmp_path: Path) -> None:
    bundle = {"type": "bundle", "id": "bundle--6d9d6b8e-1f0c-4b9e-9d57-2a1b3c4d5e6f", "objects": [
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--1d9d6b8e-1f0c-4b9e-9d57-2a1b3c4d5e6f",
         "created": "2026-10-01T08:00:00.000Z", "modified": "2026-10-01T08:00:00.000Z", "pattern_type": "stix",
         "valid_from": "2026-10-01T00:00:00Z",
         "pattern": "[domain-name:value IN ('a.invented.example', 'b.invented.example')] "
                    "OR [ipv4-addr:value = '192.0.2.5'] REPEATS 3 TIMES"}]}
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    rows, _ = load(path)
    common = dict(indicator_id="indicator--1d9d6b8e-1f0c-4b9e-9d57-2a1b3c4d5e6f",
                  valid_from=utc("2026-10-01T00:00:00"))
    assert rows == [expected("domain", "a.invented.example", path, "stix", **common),
                    expected("domain", "b.invented.example", path, "stix", **common),
                    expected("ipv4", "192.0.2.5", path, "stix", conjunctive=True, **common)]


def test_misp_event_attributes_and_objects() -> None:
    path = DATA / "misp_event.json"
    rows, notes = load(path)
    # the galaxy cluster names the family; the event's title describes attributes that carry no comment
    event = dict(name="InventedRAT", description="InventedRAT campaign against invented-corp",
                 tags=["tlp:green", 'misp-galaxy:malpedia="InventedRAT"'])
    assert rows == [
        expected("ipv4", "198.51.100.31", path, "misp", indicator_id="7c86ee6f-14a6-4109-9b73-fb4e82538be8",
                 first_seen=utc("2026-10-03T10:00:00"), last_seen=utc("2026-10-05T12:30:00"),
                 **{**event, "description": "C2 server", "tags": [*event["tags"], "kill-chain:command-and-control"]}),
        expected("ipv4", "198.51.100.32", path, "misp", port=8443, indicator_id="f5bd213a-b9db-467f-8b70-27798b167b94",
                 **event),
        expected("domain", "update.invented-corp.example", path, "misp",
                 indicator_id="f5e8ac61-e77c-4c6b-88d4-5b7b6785a9b9", **event),
        expected("domain", "cdn.invented-rat.example", path, "misp",
                 indicator_id="2a9c1c1e-3a52-4b7e-9f59-2b7a0e2f5d10", **event),
        expected("ipv6", "2001:db8::31", path, "misp", indicator_id="2a9c1c1e-3a52-4b7e-9f59-2b7a0e2f5d10", **event),
        expected("url", "https://files.invented-corp.example/update/setup.exe", path, "misp",
                 host="files.invented-corp.example", indicator_id="3b0d2d2f-4b63-4c8f-8a6a-3c8b1f306e21", **event),
        expected("sha256", "faa93d2635fc9c2f245b56801da513353e6b2f610cf062e12dce8771ae9d1025", path, "misp",
                 indicator_id="91638385-a1c9-42e5-9a0a-92e375969487", **event),
        expected("md5", "2eff077f8eabd8ff909712f6c309c6d0", path, "misp",
                 indicator_id="a2749496-b2da-43f6-8b1b-a3f486a7a598", **event),
    ]
    # the deleted attribute is gone without a note; the others are counted with where they are
    assert notes == [
        f"{path}: skipped 1 indicator(s): attribute type 'email-src' is not matchable "
        f"(first at {path}: Event.Attribute[6])",
        f"{path}: skipped 1 indicator(s): attribute type 'filename' is not matchable "
        f"(first at {path}: Event.Object[0].Attribute[0])",
        f"{path}: skipped 1 indicator(s): not flagged to_ids (context, not for detection) "
        f"(first at {path}: Event.Attribute[5])",
    ]


def test_misp_rest_search_response(tmp_path: Path) -> None:
    event = json.loads((DATA / "misp_feed" / "0c7f4e9a-2f0b-4d5e-8a43-6d1f2b3c4d5e.json").read_text())
    path = tmp_path / "search.json"
    path.write_text(json.dumps({"response": [event, event]}))
    rows, _ = load(path)
    assert [(r["kind"], r["value"], r["indicator_id"]) for r in rows] == [
        ("ipv4", "192.0.2.144", "b3850aa7-c3eb-4407-9c2c-b40597cab6a9"),
        ("sha1", "1b8d0c87ebd5dbe28d6380166c3a5da79983f12c", "c4961bb8-d4fc-4518-8d3d-c516a8dbc7ba")] * 2


def test_misp_feed_manifest_reads_the_event_files_beside_it() -> None:
    event_file = DATA / "misp_feed" / "0c7f4e9a-2f0b-4d5e-8a43-6d1f2b3c4d5e.json"
    rows, notes = load(DATA / "misp_feed" / "manifest.json")
    common = dict(name="InventedRAT OSINT feed", tags=["tlp:white"])
    assert rows == [
        expected("ipv4", "192.0.2.144", event_file, "misp", indicator_id="b3850aa7-c3eb-4407-9c2c-b40597cab6a9",
                 description="scanner", **common),
        expected("sha1", "1b8d0c87ebd5dbe28d6380166c3a5da79983f12c", event_file, "misp",
                 indicator_id="c4961bb8-d4fc-4518-8d3d-c516a8dbc7ba", **common),
    ]
    assert notes == []


def test_feodo_csv() -> None:
    path = DATA / "feodo_ipblocklist.csv"
    rows, notes = load(path)
    c2 = dict(description="botnet C2 server")
    assert rows == [
        expected("ipv4", "198.51.100.61", path, "feodo-csv", port=443, source_line=11, name="Dridex",
                 first_seen=utc("2026-01-17T07:30:05"), last_seen=utc("2026-11-18T00:00:00"),
                 tags=["c2_status:offline"], **c2),
        expected("ipv4", "198.51.100.62", path, "feodo-csv", port=4643, source_line=12, name="QakBot",
                 first_seen=utc("2026-01-17T07:44:46"), last_seen=utc("2026-11-30T00:00:00"),
                 tags=["c2_status:online"], **c2),
        # an IPv4-mapped IPv6 address is the IPv4 address, as the store writes remote_ip
        expected("ipv4", "192.0.2.63", path, "feodo-csv", port=8080, source_line=13, name="Emotet",
                 first_seen=utc("2026-02-03T11:02:09"), last_seen=utc("2026-11-30T00:00:00"),
                 tags=["c2_status:online"], **c2),
    ]
    assert notes == [f"{path}: skipped 1 indicator(s): not an IP address (first at {path}:14)"]


def test_feodo_txt() -> None:
    path = DATA / "feodo_ipblocklist.txt"
    rows, notes = load(path)
    title = "abuse.ch Feodo Tracker Botnet C2 IP Blocklist (recommended)"
    assert rows == [expected("ipv4", "198.51.100.61", path, "feodo-txt", source_line=11, description=title),
                    expected("ipv4", "198.51.100.62", path, "feodo-txt", source_line=12, description=title)]
    assert notes == []


def test_threatfox_csv() -> None:
    path = DATA / "threatfox_recent.csv"
    rows, notes = load(path)
    vidar = dict(name="Vidar", confidence=None)
    assert rows == [
        expected("domain", "dazayse.invented-lure.example", path, "threatfox-csv", source_line=11,
                 indicator_id="1844855", name="ClearFake", description="payload_delivery", confidence=100,
                 first_seen=utc("2026-11-30T22:19:04"), tags=["ClearFake", "windows"]),
        expected("ipv4", "203.0.113.36", path, "threatfox-csv", port=5555, source_line=12, indicator_id="1844853",
                 name="Cobalt Strike", description="botnet_cc", confidence=75, first_seen=utc("2026-11-30T21:46:30"),
                 last_seen=utc("2026-11-30T22:46:23"), tags=["CobaltStrike", "c2"]),
        expected("url", "https://fitness.invented-shop.example/path?q=a,b", path, "threatfox-csv",
                 host="fitness.invented-shop.example", source_line=13, indicator_id="1844827",
                 description="payload_delivery", first_seen=utc("2026-11-30T19:15:03"),
                 tags=["ClickFix", "compromised", "Vidar"],
                 reference="https://bazaar.abuse.ch/sample/"
                           "3e0716326ff054c5d4d8c5830843a636f4cb5f0f8b537b55e86922a2dcd494df/",
                 **{**vidar, "confidence": 75}),
        expected("sha256", "3e0716326ff054c5d4d8c5830843a636f4cb5f0f8b537b55e86922a2dcd494df", path,
                 "threatfox-csv", source_line=14, indicator_id="1844826", description="payload",
                 first_seen=utc("2026-11-30T19:10:00"), tags=["exe", "Vidar"], **{**vidar, "confidence": 90}),
        expected("ipv6", "2001:db8::36", path, "threatfox-csv", port=443, source_line=15, indicator_id="1844825",
                 name="Mirai", description="botnet_cc", confidence=50, first_seen=utc("2026-11-30T19:05:00")),
    ]
    assert notes == [f"{path}: skipped 1 indicator(s): ioc_type 'sha3_384_hash' is not matchable "
                     f"(first at {path}:16)"]


def test_threatfox_json_export() -> None:
    path = DATA / "threatfox_recent.json"
    rows, notes = load(path)
    assert rows == [
        expected("ipv4", "203.0.113.36", path, "threatfox-json", port=5555, indicator_id="1844853",
                 name="Cobalt Strike", description="botnet_cc", confidence=75, first_seen=utc("2026-11-30T21:46:30"),
                 last_seen=utc("2026-11-30T22:46:23"), tags=["CobaltStrike", "c2"]),
        expected("md5", "e25d8692760ac0222f33c71a68359b30", path, "threatfox-json", indicator_id="1844854",
                 name="Agent Tesla", description="payload", confidence=100, first_seen=utc("2026-11-30T21:50:00"),
                 reference="https://bazaar.abuse.ch/sample/invented/"),
    ]
    assert notes == []


def test_threatfox_api_answer(tmp_path: Path) -> None:
    # the get_iocs answer as https://threatfox.abuse.ch/api/ documents it: "ioc", "first_seen" with " UTC", tag list
    answer = {"query_status": "ok", "data": [
        {"id": "1558251", "ioc": "invented-c2.example:443", "threat_type": "botnet_cc",
         "threat_type_desc": "Indicator that identifies a botnet command&control server (C&C)", "ioc_type": "ip:port",
         "malware": "win.cobalt_strike", "malware_printable": "Cobalt Strike", "confidence_level": 75,
         "first_seen": "2026-03-20 14:30:00 UTC", "last_seen": None, "reporter": "abuse_ch",
         "reference": None, "tags": ["CobaltStrike", "c2"]},
        {"id": "1558252", "ioc": "198.51.100.90:8080", "threat_type": "botnet_cc", "ioc_type": "ip:port",
         "malware": "win.sliver", "malware_printable": "Sliver", "confidence_level": 100,
         "first_seen": "2026-03-20 14:35:00 UTC", "last_seen": "2026-03-21 00:00:00 UTC", "tags": None}]}
    path = tmp_path / "answer.json"
    path.write_text(json.dumps(answer))
    rows, notes = load(path)
    assert rows == [expected("ipv4", "198.51.100.90", path, "threatfox-json", port=8080, indicator_id="1558252",
                             name="Sliver", description="botnet_cc", confidence=100,
                             first_seen=utc("2026-03-20T14:35:00"), last_seen=utc("2026-03-21T00:00:00"))]
    # an ip:port IOC whose host is a name is not an address: counted, not guessed
    assert notes == [f"{path}: skipped 1 indicator(s): not an IP address (first at {path}: IOC 1558251)"]


def test_plain_list_infers_each_kind() -> None:
    path = DATA / "iocs.txt"
    rows, notes = load(path)
    assert rows == [
        expected("ipv4", "198.51.100.71", path, "plain", source_line=3),
        expected("ipv4", "198.51.100.0/29", path, "plain", source_line=4, network=True),
        expected("ipv6", "2001:db8::71", path, "plain", source_line=5),
        expected("ipv4", "203.0.113.72", path, "plain", source_line=6, port=8443),
        expected("domain", "evil-updates.example", path, "plain", source_line=7),
        expected("url", "https://evil-updates.example/stage2.ps1", path, "plain", source_line=8,
                 host="evil-updates.example"),
        expected("sha256", "e3db8f44ddaba163f09a765ffba6f7440c00eb5c4a84400720d817d81ad05a01", path, "plain",
                 source_line=9),
        expected("md5", "fdf32a7a7fe52ebd879e000c7b2b6f7d", path, "plain", source_line=10),
        expected("sha1", "555b2836b08b9e2fe20d366ae1cc7da1bc84b5ef", path, "plain", source_line=11),
    ]
    assert notes == [
        f"{path}: skipped 1 indicator(s): more than one value on a line (first at {path}:12)",
        f"{path}: skipped 1 indicator(s): not an IP address, network, domain, URL or hash (first at {path}:13)",
    ]


def test_formats_are_told_by_content_not_name(tmp_path: Path) -> None:
    names = {}
    for source in ("stix_bundle.json", "misp_event.json", "threatfox_recent.json", "threatfox_recent.csv",
                   "feodo_ipblocklist.csv", "feodo_ipblocklist.txt", "iocs.txt"):
        renamed = tmp_path / f"{source.replace('.', '_')}.dat"
        renamed.write_bytes((DATA / source).read_bytes())
        names[source] = sniff(renamed)[0]
    manifest = sniff(DATA / "misp_feed" / "manifest.json")[0]
    assert names == {"stix_bundle.json": "STIX bundle", "misp_event.json": "MISP event",
                     "threatfox_recent.json": "ThreatFox JSON", "threatfox_recent.csv": "ThreatFox CSV",
                     "feodo_ipblocklist.csv": "Feodo Tracker CSV", "feodo_ipblocklist.txt": "Feodo Tracker list",
                     "iocs.txt": "IOC list"}
    assert manifest == "MISP feed manifest"


def test_idn_domains_are_stored_as_dns_carries_them(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("Bücher-Invented.Example.\nhttps://bücher-invented.example/x\n", encoding="utf-8")
    rows, _ = load(path)
    assert rows == [expected("domain", "xn--bcher-invented-gsb.example", path, "plain", source_line=1),
                    expected("url", "https://bücher-invented.example/x", path, "plain", source_line=2,
                             host="xn--bcher-invented-gsb.example")]


def test_hosts_file_blocklist_lines_are_domains(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("# hosts-file blocklist\n127.0.0.1 localhost\n0.0.0.0 ads.invented.example\n"
                    "0.0.0.0 a.invented.example b.invented.example\n")
    rows, notes = load(path)
    assert rows == [expected("domain", "ads.invented.example", path, "plain", source_line=3)]
    assert notes == [f"{path}: skipped 1 indicator(s): more than one value on a line (first at {path}:4)",
                     f"{path}: skipped 1 indicator(s): not an IP address, network, domain, URL or hash "
                     f"(first at {path}:2)"]


def test_several_files_in_order() -> None:
    rows, _ = load(DATA / "feodo_ipblocklist.txt", DATA / "threatfox_recent.json")
    assert [(r["source_format"], r["value"]) for r in rows] == [
        ("feodo-txt", "198.51.100.61"), ("feodo-txt", "198.51.100.62"),
        ("threatfox-json", "203.0.113.36"), ("threatfox-json", "e25d8692760ac0222f33c71a68359b30")]


def test_stix_20_bundle(tmp_path: Path) -> None:
    # STIX 2.0 (OASIS STIX 2.0 part 1): spec_version on the bundle, labels required, no pattern_type
    bundle = {"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "spec_version": "2.0",
              "objects": [{"type": "indicator", "id": "indicator--a932fcc6-e032-476c-826f-cb970a5a1ade",
                           "created": "2017-01-01T00:00:00.000Z", "modified": "2017-01-01T00:00:00.000Z",
                           "labels": ["malicious-activity"], "valid_from": "2017-01-01T00:00:00Z",
                           "pattern": "[ipv4-addr:value = '192.0.2.9']"}]}
    path = tmp_path / "bundle20.json"
    path.write_text(json.dumps(bundle))
    rows, notes = load(path)
    assert rows == [expected("ipv4", "192.0.2.9", path, "stix",
                             indicator_id="indicator--a932fcc6-e032-476c-826f-cb970a5a1ade",
                             valid_from=utc("2017-01-01T00:00:00"), tags=["malicious-activity"])]
    assert notes == []
