"""The record a message is stored as inside a segment file: self-describing, checksummed, with a commit mark.

A record is everything start-up recovery needs to rebuild the message's index row, and the message itself::

    prefix (36 octets, little-endian)  magic "SLR1", length of the metadata, length of the message,
                                       the queue id (20 ASCII octets), CRC-32 of all the rest but the mark
    metadata                           one JSON object: what the index row holds (queue id, envelope, SHA-256, …)
    message                            the bytes exactly as received after dot-unstuffing
    mark (4 octets)                    "SLC1": committed; "SLV1": void (its index row failed, the sender got 4xx)

Segments are zero-filled before use, so the first record that does not parse marks the end of what was written:
either zeros (the clean end) or a record a crash cut short (its sync never returned, so its sender got no 250,
and nothing was written after it). Pure functions: no file access here.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

__all__ = [
    "COMMITTED",
    "MAGIC",
    "MARK_SIZE",
    "PREFIX_SIZE",
    "VOID",
    "Record",
    "RecordDamaged",
    "Scan",
    "encode_record",
    "parse_record",
    "record_length",
    "scan_records",
]

MAGIC = b"SLR1"
COMMITTED = b"SLC1"
VOID = b"SLV1"
_PREFIX = struct.Struct("<4sII20sI")  # magic, metadata length, message length, queue id, CRC-32
PREFIX_SIZE = _PREFIX.size
MARK_SIZE = 4
_UNCHECKED = PREFIX_SIZE - 4  # the CRC covers the prefix up to itself
_ZERO_PREFIX = bytes(PREFIX_SIZE)


class RecordDamaged(Exception):  # noqa: N818 - internal signal: a torn tail at recovery, a StoreError on reading
    """The octets at an offset are not one whole, intact record."""


@dataclass(frozen=True, slots=True)
class Record:
    """One parsed record: where it is, its queue id, metadata, message, and whether it was voided."""

    offset: int
    length: int
    queue_id: str
    meta: dict[str, Any]
    body: bytes
    void: bool


@dataclass(frozen=True, slots=True)
class Scan:
    """What :func:`scan_records` found from its start: the records, where they end, and what stopped it."""

    records: tuple[Record, ...]
    end: int
    torn: str | None
    """None at zeros or the end of the data; else why the octets at ``end`` are no record (a torn tail)."""


def encode_record(queue_id: str, meta_json: bytes, body: bytes) -> bytes:
    """The record for a message (``meta_json`` is the JSON metadata, ``body`` the message), committed."""
    head = _PREFIX.pack(MAGIC, len(meta_json), len(body), queue_id.encode("ascii"), 0)[:_UNCHECKED]
    crc = zlib.crc32(body, zlib.crc32(meta_json, zlib.crc32(head)))
    return b"".join((head, crc.to_bytes(4, "little"), meta_json, body, COMMITTED))


def record_length(meta_length: int, body_length: int) -> int:
    return PREFIX_SIZE + meta_length + body_length + MARK_SIZE


def parse_record(data: bytes | memoryview, offset: int = 0) -> Record:
    """The record at ``offset`` in ``data``; ``RecordDamaged`` when there is none, whole and intact."""
    view = memoryview(data)
    if len(view) - offset < PREFIX_SIZE:
        raise RecordDamaged("the record's prefix stops short")
    magic, meta_length, body_length, raw_id, crc = _PREFIX.unpack_from(view, offset)
    if magic != MAGIC:
        raise RecordDamaged("no record magic")
    length = record_length(meta_length, body_length)
    if len(view) - offset < length:
        raise RecordDamaged("the record stops short of its length")
    meta_start = offset + PREFIX_SIZE
    body_start = meta_start + meta_length
    mark_start = body_start + body_length
    meta_octets = view[meta_start:body_start]
    body = view[body_start:mark_start]
    check = zlib.crc32(body, zlib.crc32(meta_octets, zlib.crc32(view[offset : offset + _UNCHECKED])))
    if check != crc:
        raise RecordDamaged("the record's checksum does not match")
    mark = bytes(view[mark_start : mark_start + MARK_SIZE])
    if mark not in (COMMITTED, VOID):
        raise RecordDamaged("the record has no commit mark")
    try:
        queue_id = raw_id.decode("ascii")
        meta = json.loads(bytes(meta_octets))
    except ValueError as exc:
        raise RecordDamaged(f"the record's metadata is not JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("queue_id") != queue_id:
        raise RecordDamaged("the record's metadata does not name its queue id")
    return Record(offset, length, queue_id, meta, bytes(body), mark == VOID)


def scan_records(data: bytes | memoryview, start: int = 0) -> Scan:
    """Every record from ``start`` on (void ones included), up to zeros, the end of ``data`` or a damaged one."""
    view = memoryview(data)
    records: list[Record] = []
    offset = start
    while len(view) - offset >= PREFIX_SIZE and view[offset : offset + PREFIX_SIZE] != _ZERO_PREFIX:
        try:
            record = parse_record(view, offset)
        except RecordDamaged as exc:
            return Scan(tuple(records), offset, str(exc))
        records.append(record)
        offset += record.length
    tail = bytes(view[offset:])
    if tail.strip(b"\0") and len(tail) < PREFIX_SIZE:
        return Scan(tuple(records), offset, "the record's prefix stops short")
    return Scan(tuple(records), offset, None)
