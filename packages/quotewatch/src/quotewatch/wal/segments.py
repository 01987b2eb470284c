"""The frame log's files: segments of checksummed blocks, and reading them back.

A segment is `<first position, 20 digits>.wal`. It holds blocks, each a header followed by a
body:

    magic "QWB1" | kind u8 | first position u64 | entries u32 | body bytes u32 | crc32 u32

The checksum covers the header's other fields and the body.

- A **checkpoint** block opens every segment: the JSON state a session needs to rebuild its
  books and id trackers at the segment's first position (`FeedSession.checkpoint`); it holds
  no entries.
- An **entries** block is one group write: `n` entry kinds (u8), `n` receive times (i64, µs),
  `n` payload lengths (u32), then the payloads. Entries have consecutive positions from the
  block's first. Writing a group as arrays keeps the log thread's per-frame work to a few C
  calls, so it holds the GIL the feed loop needs for as short a time as possible.

A block is written whole and then fsynced, so a crash can only leave a torn last block; reading
stops at the first block whose header, length or checksum is wrong, and what was read before
it is exactly what was on disk in full.
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import NamedTuple

MAGIC = b"QWB1"
HEADER = struct.Struct("<4sBQIII")
_FIELDS = struct.Struct("<4sBQII")  # the header without its checksum
SUFFIX = ".wal"
_LITTLE = sys.byteorder == "little"


class BlockKind(IntEnum):
    """What a block holds."""

    CHECKPOINT = 1
    ENTRIES = 2


class EntryKind(IntEnum):
    """What an entry is: a frame as received (text or binary) or the start of a connection."""

    TEXT = 0
    BINARY = 1
    CONNECT = 2


class Entry(NamedTuple):
    """One entry read back: its log position, kind, receive time (µs) and payload."""

    position: int
    kind: EntryKind
    received_us: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Block:
    """One block read back: a checkpoint (its state as JSON bytes) or a run of entries."""

    kind: BlockKind
    first: int
    entries: tuple[Entry, ...] = ()
    checkpoint: bytes = b""

    @property
    def end(self) -> int:
        """The position after the block's last entry."""
        return self.first + len(self.entries)


def segment_name(first: int) -> str:
    """The file name of the segment whose first position is `first`."""
    return f"{first:020d}{SUFFIX}"


def segment_paths(directory: Path) -> list[Path]:
    """The segment files in `directory`, in position order."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob(f"*{SUFFIX}") if p.stem.isdigit())


def segment_first(path: Path) -> int:
    """The first position of the segment at `path`, from its name."""
    return int(path.stem)


def _array(code: str, values: Iterable[int]) -> bytes:
    data = array(code, values)
    if not _LITTLE:
        data.byteswap()
    return data.tobytes()


def _header(kind: BlockKind, first: int, count: int, body: bytes) -> bytes:
    fields = _FIELDS.pack(MAGIC, kind, first, count, len(body))
    return fields + struct.pack("<I", zlib.crc32(body, zlib.crc32(fields)))


def encode_checkpoint(first: int, state: bytes) -> bytes:
    """A checkpoint block for position `first`."""
    return _header(BlockKind.CHECKPOINT, first, 0, state) + state


def encode_entries(
    first: int, kinds: Sequence[int], times: Sequence[int], payloads: Sequence[bytes]
) -> bytes:
    """An entries block: `len(kinds)` entries from position `first`."""
    return encode_joined(first, kinds, times, map(len, payloads), b"".join(payloads))


def encode_joined(
    first: int, kinds: Sequence[int], times: Sequence[int], lengths: Iterable[int], joined: bytes
) -> bytes:
    """An entries block from the payloads' lengths and their concatenation `joined` (one
    allocation for a whole group instead of one per frame)."""
    body = b"".join((_array("B", kinds), _array("q", times), _array("I", lengths), joined))
    return _header(BlockKind.ENTRIES, first, len(kinds), body) + body


def _decode_entries(first: int, count: int, body: bytes) -> tuple[Entry, ...]:
    kinds = array("B", body[:count])
    times = array("q", body[count : count * 9])
    lengths = array("I", body[count * 9 : count * 13])
    if not _LITTLE:
        times.byteswap()
        lengths.byteswap()
    entries = []
    offset = count * 13
    for i in range(count):
        end = offset + lengths[i]
        entries.append(Entry(first + i, EntryKind(kinds[i]), times[i], body[offset:end]))
        offset = end
    if offset != len(body):
        raise ValueError("entry lengths do not add up to the block body")
    return tuple(entries)


@dataclass
class SegmentRead:
    """A segment read back: its whole blocks, and whether a torn or corrupt block ended it."""

    path: Path
    blocks: list[Block]
    torn: bool
    size: int

    @property
    def first(self) -> int:
        """The segment's first position."""
        return segment_first(self.path)

    @property
    def end(self) -> int:
        """The position after the last entry read."""
        return self.blocks[-1].end if self.blocks else self.first

    def entries(self) -> Iterator[Entry]:
        """Every entry read, in position order."""
        for block in self.blocks:
            yield from block.entries


def read_segment(path: Path) -> SegmentRead:
    """Read the whole blocks of the segment at `path`; stop at the first torn or corrupt one."""
    data = path.read_bytes()
    blocks: list[Block] = []
    offset = 0
    torn = False
    expected = segment_first(path)
    while offset < len(data):
        block = _block_at(data, offset, expected)
        if block is None:
            torn = True
            break
        parsed, offset = block
        blocks.append(parsed)
        expected = parsed.end
    return SegmentRead(path, blocks, torn, len(data))


def _block_at(data: bytes, offset: int, expected: int) -> tuple[Block, int] | None:
    """The block at `offset` and the offset after it, or None if it is torn or corrupt."""
    if len(data) - offset < HEADER.size:
        return None
    magic, kind, first, count, size, crc = HEADER.unpack_from(data, offset)
    start = offset + HEADER.size
    body = data[start : start + size]
    if magic != MAGIC or first != expected or len(body) != size:
        return None
    if zlib.crc32(body, zlib.crc32(data[offset : offset + _FIELDS.size])) != crc:
        return None
    try:
        if kind == BlockKind.CHECKPOINT:
            block = Block(BlockKind.CHECKPOINT, first, checkpoint=body)
        elif kind == BlockKind.ENTRIES:
            block = Block(BlockKind.ENTRIES, first, _decode_entries(first, count, body))
        else:
            return None
    except ValueError:
        return None
    return block, start + size
