"""The run summary (`--summary-json`, and printed at the end of `run`, `demo` and `replay`): the
one place that puts it together and writes it.

`run_summary` takes the feed's part from `quotewatch.ingest.summary` and adds, for a run with a
pipeline, `pipeline` (counts, latency percentiles, rows expected per table) and `model`, and
with storage, `storage` (rows written, commit retries and completeness per table).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from quotewatch.config import CLOUD_RUN_ENV
from quotewatch.ingest.parser import Feed
from quotewatch.ingest.summary import feed_summary
from quotewatch.metrics import COMMIT_RETRIES, MESSAGE_LATENCY

if TYPE_CHECKING:
    from quotewatch.ingest.backfill import Backfiller
    from quotewatch.ingest.session import FeedSession
    from quotewatch.pipeline.pipeline import Pipeline


class _Counts(Protocol):
    written: int


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The q-quantile from cumulative (upper bound, count) buckets, interpolated linearly
    within the bucket as Prometheus's histogram_quantile does; None without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower  # beyond the last finite bound: report that bound
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


def latency_buckets() -> list[tuple[float, float]]:
    """Cumulative buckets of `pipeline_message_latency_seconds` (empty when metrics are off)."""
    out = []
    for family in MESSAGE_LATENCY.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                out.append((float(sample.labels["le"]), sample.value))
    return sorted(out)


def commit_retries() -> int:
    """Commits this process retried after losing a race with another writer."""
    return int(
        sum(
            s.value
            for f in COMMIT_RETRIES.collect()
            for s in f.samples
            if s.name.endswith("_total")
        )
    )


def run_summary(
    session: FeedSession,
    duration_s: float,
    pipeline: Pipeline | None = None,
    storage: Mapping[str, _Counts] | None = None,
    backfiller: Backfiller | None = None,
) -> dict[str, Any]:
    """The summary of a run of `duration_s` seconds: the feed's sections, then, with
    `pipeline`, its sections and (with the storage writer's counts) the storage section.

    `raw_trades` completeness counts Exchange trade ids first to last per product, so trades
    lost on the websocket lower it and backfilled ones restore it.

    Latency percentiles come from the latency histogram, so they are interpolated within its
    buckets (None when instrumentation is off).
    """
    summary = feed_summary(session, duration_s)
    summary["backfill"] = _backfill_section(session, backfiller)
    if pipeline is not None:
        summary.update(_pipeline_sections(pipeline, storage))
        spans = {
            product: session.trades.tracker.last(product) - first + 1  # type: ignore[operator]
            for product, first in session.trades.first_ids.items()
        }
        if storage is not None and spans and "raw_trades" in summary["storage"]["completeness"]:
            written = summary["storage"]["rows_written"].get("raw_trades", 0)
            summary["storage"]["completeness"]["raw_trades"] = round(
                written / sum(spans.values()), 6
            )
    return summary


def _backfill_section(session: FeedSession, backfiller: Backfiller | None) -> dict[str, Any]:
    if session.feed is not Feed.EXCHANGE:
        return {
            "enabled": False,
            "why": "Advanced Trade gaps are in sequence_num, which names no trades, and its "
            "public trades endpoint cannot page through a window; see the README",
        }
    if backfiller is None:
        return {"enabled": False, "why": "off (backfill_max_ids 0, or a replay)"}
    return {
        "enabled": True,
        "rest_url": backfiller.api.base_url,
        "requests": dict(sorted(backfiller.stats.statuses.items())),
    }


def write_summary(summary: dict[str, Any], path: Path | None) -> None:
    """Print the summary as JSON, and write it to `path` if given.

    On Cloud Run it is printed on one line, which Cloud Logging keeps as one structured entry.
    """
    text = json.dumps(summary, indent=2)
    print(json.dumps(summary) if os.environ.get(CLOUD_RUN_ENV) else text, flush=True)
    if path is not None:
        path.write_text(text + "\n", encoding="utf-8")


def _pipeline_sections(pipeline: Pipeline, storage: Mapping[str, _Counts] | None) -> dict[str, Any]:
    stats = pipeline.stats
    buckets = latency_buckets()
    p50, p99 = histogram_quantile(buckets, 0.5), histogram_quantile(buckets, 0.99)
    models = {name: prod.classifier.state() for name, prod in sorted(pipeline.products.items())}
    accuracies = [m.accuracy_recent for m in models.values() if m.accuracy_recent is not None]
    summary: dict[str, Any] = {
        "pipeline": {
            "samples": stats.samples,
            "labels": stats.labels,
            "predictions": stats.predictions,
            "evictions": stats.evictions,
            "latency_p50_ms": None if p50 is None else round(p50 * 1e3, 4),
            "latency_p99_ms": None if p99 is None else round(p99 * 1e3, 4),
            "rows_expected": dict(stats.rows),
        },
        "model": {
            "ready": bool(models) and all(m.ready for m in models.values()),
            "accuracy_recent": round(sum(accuracies) / len(accuracies), 4) if accuracies else None,
            "products": {
                name: {
                    "ready": m.ready,
                    "accuracy_recent": m.accuracy_recent,
                    "class_counts": list(m.class_counts),
                }
                for name, m in models.items()
            },
        },
    }
    if storage is not None:
        written = {table: c.written for table, c in storage.items()}
        summary["storage"] = {
            "rows_written": written,
            "commit_retries": commit_retries(),
            "completeness": {
                table: round(written.get(table, 0) / n, 6) if n else None
                for table, n in stats.rows.items()
            },
        }
    return summary
