"""Recording received frames to JSON Lines, one per frame: ``{"ts": <receive time, epoch
seconds>, "msg": <the frame as a JSON object>}``.

A frame that is not a JSON object (malformed on the wire) is kept as a JSON string, so a replay
counts it as invalid exactly like the live run did. `Recorder` is a `FeedSession` tap.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import IO

from quotewatch.ingest.invalid import Invalid, InvalidReason
from quotewatch.ingest.parser import ParseResult
from quotewatch.ingest.session import Frame

_NOT_OBJECTS = (InvalidReason.MALFORMED_JSON, InvalidReason.NOT_AN_OBJECT)


class Recorder:
    """Writes every frame a session receives to ``path`` (truncating it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frames = 0
        self._file: IO[str] = path.open("w", encoding="utf-8")

    def __repr__(self) -> str:
        return f"Recorder({str(self.path)!r}, frames={self.frames})"

    def __call__(self, frame: Frame, received_us: int, result: ParseResult) -> None:
        """Write one frame."""
        if isinstance(frame, dict):
            msg = json.dumps(frame, separators=(",", ":"))
        else:
            text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
            if isinstance(result, Invalid) and result.reason in _NOT_OBJECTS:
                msg = json.dumps(text)
            else:
                # Valid JSON has newlines only as whitespace, so this keeps one line per frame.
                msg = text.replace("\n", " ").replace("\r", " ")
        self._file.write(f'{{"ts":{received_us // 1_000_000}.{received_us % 1_000_000:06d},'
                         f'"msg":{msg}}}\n')  # fmt: skip
        self.frames += 1

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
