"""Reads MISP event JSON (the MISP core format) and MISP feeds (``manifest.json`` beside one ``<uuid>.json`` per event).

Layout (the MISP core format, draft-dulaunoy-misp-core-format; https://www.misp-project.org/datamodels/):
``{"Event": {"uuid", "info", "Tag": [{"name"}], "Attribute": [...], "Object": [{"name", "Attribute": [...]}]}}``;
each attribute has ``uuid``, ``type``, ``category``, ``value``, ``to_ids``, ``comment``, ``timestamp``, optional
``first_seen``/``last_seen`` and ``Tag``. A REST search answers ``{"response": [{"Event": ...}, ...]}``.
Only attributes flagged ``to_ids`` are read: MISP marks the rest as context, not fit for detection. A feed's
``manifest.json`` maps each event uuid to its metadata; the events themselves are read from the files beside it.
A feed's ``hashes.csv`` holds MD5 digests of values, not values, and is refused with a pointer to the manifest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError
from orchestrator.intel.model import IocRow, Notes, address_kind, ioc_row, split_port
from orchestrator.schema import SchemaError

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# galaxies whose clusters name a malware family or an actor (the MISP galaxy types of misp-galaxy)
_FAMILY_GALAXIES = {"malpedia", "mitre-malware", "mitre-tool", "threat-actor", "mitre-intrusion-set", "ransomware",
                    "rat", "botnet", "tool", "backdoor", "stealer", "banker", "android", "exploit-kit"}
_GALAXY_TAG = re.compile(r'misp-galaxy:([\w-]+)="(.+)"')
# MISP attribute type -> how its value splits into (kind, value, port) IOCs
_ADDRESS = ("ip-dst", "ip-src")
_ADDRESS_PORT = ("ip-dst|port", "ip-src|port")
_DOMAIN = ("domain", "hostname")
_HASH = {"md5": "md5", "sha1": "sha1", "sha256": "sha256", "filename|md5": "md5", "filename|sha1": "sha1",
         "filename|sha256": "sha256"}


def is_misp_event(document: Any) -> bool:
    if isinstance(document, Mapping):
        return "Event" in document or (isinstance(document.get("response"), list))
    return isinstance(document, list) and bool(document) and all(
        isinstance(item, Mapping) and "Event" in item for item in document[:5])


def is_misp_manifest(document: Any) -> bool:
    """A feed manifest: event uuid -> {"info", "Orgc", "timestamp", ...} for every entry."""
    return isinstance(document, Mapping) and bool(document) and all(
        isinstance(meta, Mapping) and "info" in meta and "timestamp" in meta for meta in list(document.values())[:5])


def read_misp(path: Path, document: Any, notes: Notes) -> Iterator[IocRow]:
    if isinstance(document, Mapping) and "Event" in document:
        events = [document]
    else:
        events = document.get("response") if isinstance(document, Mapping) else document
    for index, wrapper in enumerate(events):
        where = "Event" if len(events) == 1 else f"response[{index}].Event"
        event = wrapper.get("Event") if isinstance(wrapper, Mapping) else None
        if not isinstance(event, Mapping):
            raise InputError(f"{path}: {where}: expected a MISP event object")
        yield from _event(path, event, where, notes)


def read_misp_manifest(path: Path, document: Mapping[str, Any], notes: Notes) -> Iterator[IocRow]:
    for uuid in document:
        if not _UUID.fullmatch(uuid):  # the key names a file beside the manifest: never a path elsewhere
            raise InputError(f"{path}: manifest key {uuid[:60]!r} is not an event uuid")
        event_path = path.parent / f"{uuid}.json"
        try:
            event_doc = json.loads(event_path.read_bytes())
        except FileNotFoundError:
            raise InputError(f"{path}: event {uuid}: {event_path.name} is missing beside the manifest") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"{event_path}: cannot read the feed's event: {exc}") from None
        if not (isinstance(event_doc, Mapping) and isinstance(event_doc.get("Event"), Mapping)):
            raise InputError(f"{event_path}: expected a MISP event object ({{\"Event\": ...}})")
        yield from _event(event_path, event_doc["Event"], "Event", notes)


def _tags(holder: Mapping[str, Any]) -> list[str]:
    tags = holder.get("Tag") or []
    if not isinstance(tags, list):
        return []
    return [str(tag["name"]) for tag in tags if isinstance(tag, Mapping) and tag.get("name")]


def _list(holder: Mapping[str, Any], key: str, path: Path, where: str) -> list[Any]:
    value = holder.get(key) or []
    if not isinstance(value, list):
        raise InputError(f"{path}: {where}.{key}: expected a list, got {type(value).__name__}")
    return value


def _families(event: Mapping[str, Any], tags: list[str]) -> list[str]:
    """The malware / actor names the event's galaxy clusters (or their misp-galaxy tags) give."""
    names = []
    for galaxy in event.get("Galaxy") or []:
        if isinstance(galaxy, Mapping) and galaxy.get("type") in _FAMILY_GALAXIES:
            names += [str(c["value"]) for c in galaxy.get("GalaxyCluster") or []
                      if isinstance(c, Mapping) and c.get("value")]
    for tag in tags:
        match = _GALAXY_TAG.fullmatch(tag)
        if match and match.group(1) in _FAMILY_GALAXIES:
            names.append(match.group(2))
    return list(dict.fromkeys(names))


def _event(path: Path, event: Mapping[str, Any], where: str, notes: Notes) -> Iterator[IocRow]:
    tags = _tags(event)
    families = _families(event, tags)
    # the threat's name is the family the event's galaxies give; the event's title is then its description
    context = {"name": ", ".join(families) or event.get("info"), "info": event.get("info") if families else None,
               "tags": tags}
    for index, attribute in enumerate(_list(event, "Attribute", path, where)):
        yield from _attribute(path, attribute, f"{where}.Attribute[{index}]", context, notes)
    for o_index, obj in enumerate(_list(event, "Object", path, where)):
        if not isinstance(obj, Mapping):
            raise InputError(f"{path}: {where}.Object[{o_index}]: expected a MISP object")
        object_where = f"{where}.Object[{o_index}]"
        for index, attribute in enumerate(_list(obj, "Attribute", path, object_where)):
            yield from _attribute(path, attribute, f"{object_where}.Attribute[{index}]", context, notes)


def _attribute(path: Path, attribute: Any, where: str, context: Mapping[str, Any], notes: Notes) -> Iterator[IocRow]:
    located = f"{path}: {where}"
    if not isinstance(attribute, Mapping):
        raise InputError(f"{located}: expected a MISP attribute object")
    if _flag(attribute.get("deleted")):
        return
    if not _flag(attribute.get("to_ids")):
        notes.skip(located, "not flagged to_ids (context, not for detection)")
        return
    kind_of = str(attribute.get("type") or "")
    value = str(attribute.get("value") or "")
    try:
        parts = _split(kind_of, value)
        if parts is None:
            notes.skip(located, f"attribute type {kind_of!r} is not matchable")
            return
        rows = [ioc_row(kind, part, port=port, source_file=str(path), source_format="misp",
                        indicator_id=attribute.get("uuid"), name=context["name"],
                        description=attribute.get("comment") or context["info"],
                        first_seen=attribute.get("first_seen"), last_seen=attribute.get("last_seen"),
                        tags=[*context["tags"], *_tags(attribute)]) for kind, part, port in parts]
    except SchemaError as exc:
        notes.skip(located, str(exc).split(":", 1)[0])
        return
    yield from rows


def _split(kind_of: str, value: str) -> list[tuple[str, str, int | None]] | None:
    """The (kind, value, port) IOCs one MISP attribute holds; None for a type that holds none."""
    if kind_of in _ADDRESS:
        return [(address_kind(value), value, None)]
    if kind_of in _ADDRESS_PORT or kind_of == "hostname|port":
        host, sep, port = value.rpartition("|")
        if not sep:
            raise SchemaError(f"expected value|port: {value!r}")
        host, number = split_port(f"{host}:{port}")
        return [(address_kind(host) if kind_of != "hostname|port" else "domain", host, number)]
    if kind_of in _DOMAIN:
        return [("domain", value, None)]
    if kind_of == "domain|ip":
        domain, sep, ip = value.partition("|")
        if not sep:
            raise SchemaError(f"expected domain|ip: {value!r}")
        return [("domain", domain, None), (address_kind(ip), ip, None)]
    if kind_of == "url":
        return [("url", value, None)]
    if kind_of in _HASH:
        return [(_HASH[kind_of], value.rpartition("|")[2] if "|" in kind_of else value, None)]
    return None


def _flag(value: Any) -> bool:
    """MISP booleans: JSON true/false, or "1"/"0" in older exports."""
    return value is True or str(value).strip().lower() in ("1", "true")
