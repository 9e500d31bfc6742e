"""Reads STIX 2.1 (and 2.0) bundles: every indicator whose pattern names an address, domain, URL or file hash.

Layout (STIX 2.1, OASIS, https://docs.oasis-open.org/cti/stix/v2.1/stix-v2.1.html): ``{"type": "bundle", "id",
"objects": [...]}``; an ``indicator`` has ``pattern`` (with ``pattern_type`` "stix"), ``valid_from``,
``valid_until``, ``name``, ``description``, ``confidence`` (0-100), ``labels``, ``indicator_types`` and
``external_references``; a ``relationship`` ``indicates`` links it to the malware, intrusion set or campaign it
points at. Each indicator is checked by the ``stix2`` library and its pattern parsed by ``stix2``'s pattern visitor
(``stix2-patterns``' grammar), never by a regular expression. A pattern's comparisons become rows: equality and
``IN`` on ``ipv4-addr:value``, ``ipv6-addr:value``, ``domain-name:value``, ``url:value``,
``file:hashes.'SHA-256'``/``MD5``/``SHA-1`` and ``network-traffic:dst_ref.value``/``src_ref.value`` (with
``network-traffic:dst_port`` as the port), ``ISSUBSET`` on an address (a network). OR keeps each part a whole
match; AND, FOLLOWEDBY and REPEATS make each part ``conjunctive`` (seen alone it matches the indicator only in part),
except the hashes of one file, each of which identifies it alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import stix2
import stix2.patterns as sp
from stix2.pattern_visitor import create_pattern_object

from orchestrator.errors import InputError
from orchestrator.intel.model import IocRow, Notes, address_kind, confidence_of, ioc_row
from orchestrator.schema import SchemaError

_HASHES = {"sha-256": "sha256", "sha256": "sha256", "md5": "md5", "sha-1": "sha1", "sha1": "sha1"}
_CONSTRAINTS = ("port", "type", "other")  # atoms that are no IOC value of their own
_THREATS = ("malware", "intrusion-set", "campaign", "threat-actor", "attack-pattern", "tool")


@dataclass(frozen=True)
class _Atom:
    """One matchable comparison of a pattern: the kind of value, the value, a port, and whether it matches alone."""

    # an IOC kind; "port" for a network-traffic:dst_port constraint, "type" for a ref's type check, or "other"
    kind: str
    value: str
    port: int | None = None
    alone: bool = True


def read_stix(path: Path, document: Mapping[str, Any], notes: Notes) -> Iterator[IocRow]:
    objects = document.get("objects")
    if not isinstance(objects, list):
        raise InputError(f"{path}: STIX bundle {document.get('id')}: 'objects' must be a list")
    default_version = "2.0" if document.get("spec_version") == "2.0" else "2.1"
    threats = _threat_names(objects)
    for index, obj in enumerate(objects):
        if not isinstance(obj, Mapping):
            raise InputError(f"{path}: STIX bundle objects[{index}]: expected a JSON object")
        if obj.get("type") != "indicator":
            continue
        where = f"{path}: {obj.get('id') or f'objects[{index}]'}"
        version = str(obj.get("spec_version") or default_version)
        try:
            indicator = stix2.parse(dict(obj), allow_custom=True, version=version)
        except Exception as exc:  # noqa: BLE001 - stix2/stix2-patterns also fail with UnboundLocalError on ''
            # (found by tests/intel/test_fuzz.py); any failure of the library on one object skips that object
            notes.skip(where, f"not a valid STIX {version} indicator ({type(exc).__name__})")
            continue
        if indicator.get("revoked"):
            notes.skip(where, "revoked")
            continue
        if indicator.get("pattern_type", "stix") != "stix":
            notes.skip(where, f"pattern_type {indicator.get('pattern_type')!r} is not a STIX pattern")
            continue
        try:
            grammar = "2.0" if str(indicator.get("pattern_version") or version).startswith("2.0") else "2.1"
            atoms = [a for a in _atoms(create_pattern_object(indicator.pattern, version=grammar))
                     if a.kind not in _CONSTRAINTS]
        except Exception as exc:  # noqa: BLE001 - stix2's parser raises bare Exception subclasses of its grammar
            notes.skip(where, f"pattern does not parse ({type(exc).__name__})")
            continue
        if not atoms:
            notes.skip(where, "pattern compares nothing connhunt can match (address, domain, URL, file hash)")
            continue
        # stix2 fills a missing valid_from with the time of parsing; the feed said nothing, so neither does the row
        validity = {key: indicator.get(key) if obj.get(key) else None for key in ("valid_from", "valid_until")}
        yield from _rows(path, where, indicator, atoms, threats.get(indicator.id), validity, notes)


def _rows(path: Path, where: str, indicator: Any, atoms: list[_Atom], threat: str | None,
          validity: dict[str, Any], notes: Notes) -> Iterator[IocRow]:
    references = indicator.get("external_references") or []
    reference = next((ref.get("url") or ref.get("external_id") for ref in references
                      if ref.get("url") or ref.get("external_id")), None)
    tags = [*indicator.get("labels", []), *indicator.get("indicator_types", [])]
    try:
        score = confidence_of(indicator.get("confidence"))  # stix2 does not bound it; one note per indicator
    except SchemaError as exc:
        notes.skip(where, str(exc))
        return
    for atom in atoms:
        try:
            yield ioc_row(atom.kind, atom.value, port=atom.port, conjunctive=not atom.alone, source_file=str(path),
                          source_format="stix", indicator_id=indicator.id, name=threat or indicator.get("name"),
                          description=indicator.get("description"), confidence=score,
                          tags=tags, reference=reference, **validity)
        except SchemaError as exc:
            notes.skip(where, str(exc).split(":", 1)[0])


def _threat_names(objects: list[Any]) -> dict[str, str]:
    """indicator id -> the names of what it ``indicates`` (malware, intrusion set...), from the bundle's SROs."""
    names = {obj.get("id"): obj.get("name") for obj in objects
             if isinstance(obj, Mapping) and obj.get("type") in _THREATS and obj.get("name")}
    found: dict[str, list[str]] = {}
    for obj in objects:
        if isinstance(obj, Mapping) and obj.get("type") == "relationship" and obj.get(
                "relationship_type") == "indicates" and names.get(obj.get("target_ref")):
            found.setdefault(str(obj.get("source_ref")), []).append(str(names[obj.get("target_ref")]))
    return {indicator: ", ".join(dict.fromkeys(targets)) for indicator, targets in found.items()}


def _atoms(node: Any) -> list[_Atom]:
    """The comparisons of a parsed pattern, each marked whether it satisfies the whole pattern alone."""
    if isinstance(node, (sp.OrObservationExpression, sp.OrBooleanExpression)):
        return [atom for operand in node.operands for atom in _atoms(operand)]
    if isinstance(node, sp.AndBooleanExpression):
        return _and(node)
    if isinstance(node, (sp.AndObservationExpression, sp.FollowedByObservationExpression)):
        return [replace(atom, alone=False) for operand in node.operands for atom in _atoms(operand)]
    if isinstance(node, sp.ObservationExpression):
        return _atoms(node.operand)
    if isinstance(node, sp.ParentheticalExpression):
        return _atoms(node.expression)
    if isinstance(node, sp.QualifiedObservationExpression):
        atoms = _atoms(node.observation_expression)
        # REPEATS n TIMES needs several sightings; WITHIN / START STOP only bound one in time
        return [replace(a, alone=False) for a in atoms] if isinstance(node.qualifier, sp.RepeatQualifier) else atoms
    if isinstance(node, sp._ComparisonExpression):
        return _comparison(node)
    return [_Atom("other", "")]


def _and(node: sp.AndBooleanExpression) -> list[_Atom]:
    """AND inside one observation: a port joins the addresses it constrains; the hashes of one file each match."""
    atoms = [atom for operand in node.operands for atom in _atoms(operand)]
    ports = {a.port for a in atoms if a.kind == "port"}
    values = [a for a in atoms if a.kind not in _CONSTRAINTS]
    others = [a for a in atoms if a.kind == "other"]
    port = ports.pop() if len(ports) == 1 else None
    hashes_only = bool(values) and not ports and not others and all(a.kind in _HASHES.values() for a in values)
    addresses_and_port = bool(values) and port is not None and not others and all(
        a.kind in ("ipv4", "ipv6", "domain") for a in values) and len(values) == 1
    joined = [replace(a, port=port if a.kind in ("ipv4", "ipv6", "domain") and a.port is None else a.port)
              for a in values]
    if hashes_only or addresses_and_port:
        return joined
    return [replace(a, alone=False) for a in joined] + [a for a in atoms if a.kind in _CONSTRAINTS]


def _comparison(node: Any) -> list[_Atom]:
    if node.negated:
        return [_Atom("other", "")]
    object_type = node.lhs.object_type_name
    path = tuple(str(getattr(c, "property_name", "")) for c in node.lhs.property_path)
    if isinstance(node, sp.EqualityComparisonExpression):
        constants = [node.rhs]
    elif isinstance(node, sp.InComparisonExpression):
        constants = list(node.rhs.value)
    elif isinstance(node, sp.IsSubsetComparisonExpression) and object_type in ("ipv4-addr", "ipv6-addr"):
        constants = [node.rhs]
    else:
        return [_Atom("other", "")]
    return [_typed(object_type, path, getattr(constant, "value", None)) for constant in constants]


def _typed(object_type: str, path: tuple[str, ...], value: Any) -> _Atom:
    """The atom one ``object:path = value`` comparison stands for."""
    if object_type == "network-traffic" and path in (("dst_port",), ("src_port",)) and isinstance(value, int):
        return _Atom("port", "", port=value) if path == ("dst_port",) else _Atom("other", "")
    if not isinstance(value, str):
        return _Atom("other", "")
    if object_type == "network-traffic" and path in (("dst_ref", "type"), ("src_ref", "type")):
        return _Atom("type", value)  # says which kind of object the ref is; constrains nothing connhunt matches
    if object_type in ("ipv4-addr", "ipv6-addr") and path == ("value",):
        return _Atom(object_type[:4], value)  # ipv4 / ipv6; a value of the other family is counted by ioc_row
    if object_type == "domain-name" and path == ("value",):
        return _Atom("domain", value)
    if object_type == "url" and path == ("value",):
        return _Atom("url", value)
    if object_type == "file" and len(path) == 2 and path[0] == "hashes" and path[1].lower() in _HASHES:
        return _Atom(_HASHES[path[1].lower()], value)
    if object_type == "network-traffic" and path in (("dst_ref", "value"), ("src_ref", "value")):
        try:
            return _Atom(address_kind(value), value)
        except SchemaError:
            return _Atom("domain", value)
    return _Atom("other", "")

