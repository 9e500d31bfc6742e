"""Reads a plain IOC list: one indicator per line, its kind inferred per line, ``#`` comments.

Hosts-file blocklists (``0.0.0.0 evil.example``) read as the domain. The same reader takes abuse.ch Feodo
Tracker's ``ipblocklist.txt`` (and ``ipblocklist_recommended.txt``): a ``#`` banner naming the list, then one IP
address per line. Lists passed around by hand are often defanged (``hxxp://``, ``evil[.]example``), so each value
is refanged before its kind is inferred.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from orchestrator.intel.model import (
    HASH_LENGTHS,
    IocRow,
    Notes,
    canonical_address,
    canonical_domain,
    ioc_row,
    split_port,
)
from orchestrator.intel.text import comment_text, numbered_lines
from orchestrator.schema import SchemaError

_REFANG = ((re.compile(r"\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)", re.IGNORECASE), "."),
           (re.compile(r"\[:\]"), ":"), (re.compile(r"\[/\]"), "/"), (re.compile(r"\[://\]"), "://"),
           (re.compile(r"^hxxp", re.IGNORECASE), "http"), (re.compile(r"^fxp", re.IGNORECASE), "ftp"))
_SINKHOLES = ("0.0.0.0", "127.0.0.1", "::", "::1")  # the address a hosts-file blocklist points names at
_HEX = re.compile(r"[0-9a-fA-F]+")


def refang(text: str) -> str:
    for pattern, replacement in _REFANG:
        text = pattern.sub(replacement, text)
    return text


def infer(text: str) -> tuple[str, str, int | None]:
    """(kind, value, port) of one IOC written alone; SchemaError when it is none of the kinds."""
    value = refang(text.strip())
    if "://" in value:
        return "url", value, None
    if _HEX.fullmatch(value) and len(value) in HASH_LENGTHS:
        return HASH_LENGTHS[len(value)], value, None
    for candidate, port in _with_port(value):
        try:
            address, _ = canonical_address(candidate)
            return ("ipv6" if ":" in address else "ipv4"), candidate, port
        except SchemaError:
            pass
        if "." in candidate and ":" not in candidate and not candidate.rstrip(".").rsplit(".", 1)[-1].isdigit():
            try:
                canonical_domain(candidate)
                return "domain", candidate, port
            except SchemaError:
                pass
    raise SchemaError("not an IP address, network, domain, URL or hash")


def _with_port(value: str) -> Iterator[tuple[str, int | None]]:
    yield value, None  # an IPv6 address is not mistaken for address:port
    try:
        host, port = split_port(value)
    except SchemaError:
        return
    yield host, port


def read_plain(path: Path, notes: Notes, *, source_format: str = "plain",
               description: str | None = None) -> Iterator[IocRow]:
    """One IocRow per line that holds an indicator; other lines are counted in ``notes``."""
    for number, line in numbered_lines(path):
        if comment_text(line) is not None or not line.strip():
            continue
        text = line.split(" #", 1)[0].split("\t#", 1)[0].strip()  # a trailing comment
        where = f"{path}:{number}"
        words = text.split()
        if len(words) == 2 and words[0] in _SINKHOLES:
            text = words[1]  # a hosts-file blocklist line: "0.0.0.0 evil.example"
        elif len(words) > 1:
            notes.skip(where, "more than one value on a line")
            continue
        try:
            kind, value, port = infer(text)
            yield ioc_row(kind, value, port=port, source_file=str(path), source_format=source_format,
                          source_line=number, description=description)
        except SchemaError as exc:
            notes.skip(where, str(exc).split(":", 1)[0])
