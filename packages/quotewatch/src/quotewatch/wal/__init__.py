"""The frame log: every received frame on local disk before it is processed, replayed at start
for the rows a crash lost (`quotewatch.wal.recovery`)."""

from quotewatch.wal.frame_log import FrameLog, FrameLogBusyError, LogState

__all__ = ["FrameLog", "FrameLogBusyError", "LogState"]
