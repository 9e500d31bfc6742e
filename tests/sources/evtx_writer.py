"""A minimal EVTX writer for tests: Sysmon-shaped events in one chunk, so the .evtx path runs on a real binary file.

No Windows here to write one. The layout follows libyal's "Windows XML Event Log (EVTX)" notes: a 4 KiB file header
("ElfFile\\0"), 64 KiB chunks ("ElfChnk\\0", 512-byte header with CRC32s), event records ("**\\0\\0", size, id,
FILETIME, BinXML, size). Like Windows, each record is a template instance: the first record of a kind carries the
template definition (the event's XML with substitution slots) inline, later ones refer to it by offset, and every
record carries its substitution values. Both the `evtx` package and Velociraptor's parse_evtx() read these files.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

FILE_HEADER_SIZE = 4096
CHUNK_SIZE = 65536
CHUNK_HEADER_SIZE = 512
_EPOCH_AS_FILETIME = 116444736000000000  # 1970-01-01 in 100 ns units since 1601-01-01

# BinXML value types (libyal: "Value types")
NULL, STRING, UINT8, UINT16, UINT32, UINT64, BOOL, GUID, FILETIME, HEXINT64 = (
    0x00, 0x01, 0x04, 0x06, 0x08, 0x0A, 0x0D, 0x0F, 0x11, 0x15)


class Typed:
    """A value with its BinXML type, e.g. Typed(UINT16, 3); a plain str is a STRING."""

    def __init__(self, kind: int, value: Any) -> None:
        self.kind, self.value = kind, value


class Literal(str):
    """Text that is part of the template itself (xmlns, a Data element's Name), not a substitution."""


def filetime(moment: datetime) -> int:
    return _EPOCH_AS_FILETIME + round(moment.timestamp() * 10**7)


def _typed(value: Any) -> Typed:
    if isinstance(value, Typed):
        return value
    return Typed(NULL, None) if value is None else Typed(STRING, str(value))


def _payload(value: Typed) -> bytes:
    """A substitution value as a template instance stores it: sized, no type byte, strings without a length."""
    kind, raw = value.kind, value.value
    if kind == NULL:
        return b""
    if kind == STRING:
        return raw.encode("utf-16-le")
    if kind == GUID:
        return uuid.UUID(raw).bytes_le
    if kind == FILETIME:
        return struct.pack("<Q", filetime(raw))
    if kind == BOOL:
        return struct.pack("<i", 1 if raw else 0)
    return struct.pack({UINT8: "<B", UINT16: "<H", UINT32: "<I", UINT64: "<Q", HEXINT64: "<Q"}[kind], raw)


def _values(tag: str, attributes: Sequence[tuple[str, Any]] = (), content: Sequence[Any] = ()) -> list[Any]:
    """An event's values in the order ``_Chunk.element`` numbers their substitution slots."""
    values = [value for _, value in attributes if not isinstance(value, Literal)]
    for item in content:
        if isinstance(item, tuple):
            values.extend(_values(*item))
        elif not isinstance(item, Literal):
            values.append(item)
    return values


def _shape(tag: str, attributes: Sequence[tuple[str, Any]] = (), content: Sequence[Any] = ()) -> tuple:
    """What records sharing one template have in common: the XML with each value replaced by its type."""
    def kind(value: Any) -> Any:
        return value if isinstance(value, Literal) else _typed(value).kind

    return (tag, tuple((name, kind(value)) for name, value in attributes),
            tuple(_shape(*item) if isinstance(item, tuple) else kind(item) for item in content))


class _Chunk:
    def __init__(self) -> None:
        self.data = bytearray(CHUNK_HEADER_SIZE)
        self.templates: dict[Any, int] = {}  # template key -> offset of its definition in the chunk

    def u8(self, value: int) -> None:
        self.data += struct.pack("<B", value)

    def u32_placeholder(self) -> int:
        self.data += b"\0\0\0\0"
        return len(self.data) - 4

    def patch_u32(self, at: int, value: int) -> None:
        struct.pack_into("<I", self.data, at, value)

    def name(self, text: str) -> None:
        """A name offset pointing just past itself, then the name there (how a name is written at first use)."""
        self.data += struct.pack("<I", len(self.data) + 4)
        self.data += struct.pack("<IHH", 0, 0, len(text)) + text.encode("utf-16-le") + b"\0\0"

    def substitution(self, slots: list[int], value: Any) -> None:
        """A slot for one value: optional (0x0e) so that an absent value leaves the element empty; a Literal is
        written in place as a value token."""
        if isinstance(value, Literal):
            self.data += struct.pack("<BBH", 0x05, STRING, len(value)) + value.encode("utf-16-le")
            return
        self.data += struct.pack("<BHB", 0x0E, len(slots), _typed(value).kind)
        slots.append(len(slots))

    def element(self, slots: list[int], tag: str, attributes: Sequence[tuple[str, Any]] = (),
                content: Sequence[Any] = ()) -> None:
        """<tag attr=...>content</tag> in a template definition; each value becomes a substitution slot."""
        self.u8(0x41 if attributes else 0x01)
        self.data += struct.pack("<H", 0xFFFF)  # dependency identifier (template definitions carry one): none
        size_at = self.u32_placeholder()
        self.name(tag)
        if attributes:
            attributes_at = self.u32_placeholder()
            for index, (name, value) in enumerate(attributes):
                self.u8(0x46 if index < len(attributes) - 1 else 0x06)  # 0x40: more attributes follow
                self.name(name)
                self.substitution(slots, value)
            self.patch_u32(attributes_at, len(self.data) - attributes_at - 4)
        if content:
            self.u8(0x02)
            for item in content:
                if isinstance(item, tuple):
                    self.element(slots, *item)
                else:
                    self.substitution(slots, item)
            self.u8(0x04)
        else:
            self.u8(0x03)
        self.patch_u32(size_at, len(self.data) - size_at - 4)

    def record(self, record_id: int, written: datetime, key: Any, event: tuple) -> None:
        start = len(self.data)
        self.data += b"\x2a\x2a\x00\x00"
        size_at = self.u32_placeholder()
        self.data += struct.pack("<QQ", record_id, filetime(written))
        self.data += bytes([0x0F, 0x01, 0x01, 0x00, 0x0C, 0x01])  # fragment header; template instance
        self.data += struct.pack("<I", len(self.templates) + 1)  # template id
        if key in self.templates:
            self.data += struct.pack("<I", self.templates[key])
        else:
            definition = len(self.data) + 4
            self.data += struct.pack("<I", definition)
            self.templates[key] = definition
            self.data += struct.pack("<I", 0) + uuid.uuid5(uuid.NAMESPACE_URL, repr(key)).bytes_le
            body_size_at = self.u32_placeholder()
            body = len(self.data)
            self.data += bytes([0x0F, 0x01, 0x01, 0x00])
            self.element([], *event)
            self.u8(0x00)
            self.patch_u32(body_size_at, len(self.data) - body)
        typed = [_typed(v) for v in _values(*event)]
        self.data += struct.pack("<I", len(typed))
        for value in typed:
            self.data += struct.pack("<HBB", len(_payload(value)), value.kind, 0)
        for value in typed:
            self.data += _payload(value)
        self.u8(0x00)  # end of stream
        size = len(self.data) - start + 4
        self.data += struct.pack("<I", size)
        self.patch_u32(size_at, size)
        if len(self.data) > CHUNK_SIZE:
            raise ValueError("events do not fit in one chunk")


SYSMON_PROVIDER = ("Microsoft-Windows-Sysmon", "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}",
                   "Microsoft-Windows-Sysmon/Operational")


def sysmon_event(event_id: int, record_id: int, computer: str, logged: datetime,
                 data: Sequence[tuple[str, Any]]) -> tuple:
    """An <Event> element as Sysmon writes it (System, then EventData of <Data Name=...> elements)."""
    return windows_event(SYSMON_PROVIDER, event_id, record_id, computer, logged, data)


def windows_event(provider: tuple[str, str, str], event_id: int, record_id: int, computer: str, logged: datetime,
                  data: Sequence[tuple[str, Any]], *, execution: tuple[int, int] = (3032, 4108)) -> tuple:
    """An <Event> element of ``provider`` (name, guid, channel): System, then EventData of <Data Name=...>."""
    name, guid, channel = provider
    system = [
        ("Provider", [("Name", Literal(name)), ("Guid", Literal(guid))], ()),
        ("EventID", (), [Typed(UINT16, event_id)]),
        ("Version", (), [Typed(UINT8, 5)]),
        ("Level", (), [Typed(UINT8, 4)]),
        ("Task", (), [Typed(UINT16, event_id)]),
        ("Opcode", (), [Typed(UINT8, 0)]),
        ("Keywords", (), [Typed(HEXINT64, 0x8000000000000000)]),
        ("TimeCreated", [("SystemTime", Typed(FILETIME, logged))], ()),
        ("EventRecordID", (), [Typed(UINT64, record_id)]),
        ("Correlation", (), ()),
        ("Execution", [("ProcessID", Typed(UINT32, execution[0])), ("ThreadID", Typed(UINT32, execution[1]))], ()),
        ("Channel", (), [Literal(channel)]),
        ("Computer", (), [computer]),
    ]
    event_data = [("Data", [("Name", Literal(field))], [value]) for field, value in data]
    return ("Event", [("xmlns", Literal("http://schemas.microsoft.com/win/2004/08/events/event"))],
            [("System", (), system), ("EventData", (), event_data)])


def write_evtx(events: Sequence[tuple[int, datetime, tuple]]) -> bytes:
    """The bytes of an EVTX file holding ``events`` [(record id, written, event element)] in one chunk."""
    chunk = _Chunk()
    offsets = []
    for record_id, written, event in events:
        offsets.append(len(chunk.data))
        chunk.record(record_id, written, _shape(*event), event)
    free = len(chunk.data)
    data = chunk.data + bytes(CHUNK_SIZE - len(chunk.data))
    first, last = events[0][0], events[-1][0]
    struct.pack_into("<8sQQQQIIII", data, 0, b"ElfChnk\x00", first, last, first, last, 128, offsets[-1], free,
                     zlib.crc32(bytes(data[CHUNK_HEADER_SIZE:free])))
    struct.pack_into("<I", data, 124, zlib.crc32(bytes(data[:120]) + bytes(data[128:CHUNK_HEADER_SIZE])))
    header = bytearray(FILE_HEADER_SIZE)
    struct.pack_into("<8sQQQIHHHH", header, 0, b"ElfFile\x00", 0, 0, last + 1, 128, 1, 3, FILE_HEADER_SIZE, 1)
    struct.pack_into("<I", header, 124, zlib.crc32(bytes(header[:120])))
    return bytes(header) + bytes(data)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
