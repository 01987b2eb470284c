"""Snappy block compression, the only body encoding Remote Write 1.0 accepts."""

from __future__ import annotations

import snappy

# Remote write wants the snappy *block* format. python-snappy >= 0.7 implements compress() with
# cramjam's compress_raw (block); the framed/stream format starts with b"\xff\x06\x00\x00sNaPpY"
# and is rejected by receivers. tests/qw_metrics/test_remote_write_encode.py checks this.


def compress_block(data: bytes) -> bytes:
    """Compress ``data`` with snappy in block format."""
    out: bytes = snappy.compress(data)
    return out


def decompress_block(data: bytes) -> bytes:
    """Undo :func:`compress_block`."""
    out: bytes = snappy.uncompress(data)
    return out
