"""Encoded remote-write requests decoded with the generated protobuf module, for comparing."""

from __future__ import annotations

from qw_metrics.remote_write.compress import decompress_block
from qw_metrics.remote_write.encode import EncodedRequest

from support.remote_pb2 import WriteRequest

TS = 1_700_000_000_000
Series = tuple[tuple[tuple[str, str], ...], float, int]


def decode(requests: list[EncodedRequest]) -> list[Series]:
    """(labels, value, timestamp) of every sample, checking each request's sample count."""
    out = []
    for request in requests:
        message = WriteRequest.FromString(decompress_block(request.body))
        assert request.samples == sum(len(ts.samples) for ts in message.timeseries)
        for ts in message.timeseries:
            labels = tuple((label.name, label.value) for label in ts.labels)
            out.extend((labels, s.value, s.timestamp) for s in ts.samples)
    return out
