"""The frame log's block format: what is written reads back exactly, and a torn or corrupt tail
ends the read at the last whole block (hypothesis)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from quotewatch.wal.segments import (
    BlockKind,
    EntryKind,
    encode_checkpoint,
    encode_entries,
    read_segment,
    segment_name,
)

entry = st.tuples(
    st.sampled_from(list(EntryKind)),
    st.integers(-(2**63), 2**63 - 1),
    st.binary(max_size=300),
)
groups = st.lists(st.lists(entry, min_size=1, max_size=20), max_size=8)


def _segment(tmp: Path, first: int, state: bytes, blocks: list[list[tuple[int, int, bytes]]]):
    data = [encode_checkpoint(first, state)]
    position = first
    for group in blocks:
        kinds, times, payloads = zip(*group, strict=True)
        data.append(encode_entries(position, kinds, times, payloads))
        position += len(group)
    path = tmp / segment_name(first)
    path.write_bytes(b"".join(data))
    return path, data


@settings(max_examples=150, deadline=None)
@given(first=st.integers(0, 2**40), state=st.binary(max_size=100), blocks=groups)
def test_blocks_read_back_exactly(tmp_path_factory, first, state, blocks) -> None:
    path, _ = _segment(tmp_path_factory.mktemp("seg"), first, state, blocks)
    read = read_segment(path)
    assert not read.torn
    assert read.blocks[0].kind is BlockKind.CHECKPOINT
    assert read.blocks[0].checkpoint == state
    expected = [e for group in blocks for e in group]
    got = list(read.entries())
    assert [(e.kind, e.received_us, e.payload) for e in got] == expected
    assert [e.position for e in got] == list(range(first, first + len(expected)))
    assert read.end == first + len(expected)


@settings(max_examples=150, deadline=None)
@given(blocks=groups, data=st.data())
def test_a_torn_tail_ends_the_read_at_the_last_whole_block(tmp_path_factory, blocks, data):
    path, parts = _segment(tmp_path_factory.mktemp("seg"), 7, b"{}", blocks)
    whole = b"".join(parts)
    cut = data.draw(st.integers(0, len(whole)))
    path.write_bytes(whole[:cut])
    read = read_segment(path)
    # The blocks read are exactly those wholly before the cut.
    sizes = [len(p) for p in parts]
    complete = sum(1 for k in range(len(parts)) if sum(sizes[: k + 1]) <= cut)
    assert len(read.blocks) == complete
    assert read.torn == (cut not in {sum(sizes[:k]) for k in range(len(parts) + 1)})
    entries = [e for group in blocks[: max(0, complete - 1)] for e in group]
    assert [(e.kind, e.received_us, e.payload) for e in read.entries()] == entries


@settings(max_examples=100, deadline=None)
@given(blocks=groups.filter(bool), data=st.data())
def test_a_flipped_byte_is_never_read_as_data(tmp_path_factory, blocks, data):
    path, parts = _segment(tmp_path_factory.mktemp("seg"), 0, b"{}", blocks)
    whole = bytearray(b"".join(parts))
    at = data.draw(st.integers(len(parts[0]), len(whole) - 1))
    whole[at] ^= data.draw(st.integers(1, 255))
    path.write_bytes(bytes(whole))
    read = read_segment(path)
    assert read.torn
    # Every block before the damaged one is intact; nothing from it or after is returned.
    damaged = next(k for k in range(len(parts)) if sum(len(p) for p in parts[: k + 1]) > at)
    assert len(read.blocks) == damaged
