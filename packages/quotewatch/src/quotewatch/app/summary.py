"""The run summary (`--summary-json`, and printed at the end of `run`, `demo` and `replay`): the
one place that puts it together and writes it.

`run_summary` takes the feed's part from `quotewatch.ingest.summary` and adds, for a run with a
pipeline, `pipeline` (counts, latency percentiles, rows expected per table) and `model`,
with storage, `storage` (rows written, commit retries and completeness per table), and with a
frame log, `frame_log` (its state, and what replay at start restored and could not rebuild).
Rows replay restored count as expected rows too: this run's writer commits them.
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
    from quotewatch.pipeline.pipeline import Pipeline, ProductPipeline
    from quotewatch.wal import FrameLog
    from quotewatch.wal.recovery import Recovery


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
    *,
    frame_log: FrameLog | None = None,
    recovery: Recovery | None = None,
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
    restored = {} if recovery is None else recovery.rows
    if pipeline is not None:
        summary.update(_pipeline_sections(pipeline, storage, session.trades.id_span(), restored))
    if frame_log is not None:
        state = frame_log.state()
        summary["frame_log"] = {
            "enabled": True,
            "directory": state.directory,
            "segments": state.segments,
            "bytes": state.bytes,
            "max_bytes": state.max_bytes,
            "at_bound": state.at_bound,
            "frames_unlogged": state.frames_unlogged,
            "recovery": None if recovery is None else recovery.summary(),
        }
    elif recovery is not None:  # the log was turned off at start
        summary["frame_log"] = {"enabled": False, "recovery": recovery.summary()}
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
    print(verdict(summary), flush=True)
    print(json.dumps(summary) if os.environ.get(CLOUD_RUN_ENV) else text, flush=True)
    if path is not None:
        path.write_text(text + "\n", encoding="utf-8")


EXIT_ROWS_LOST = 3


def rows_lost(summary: Mapping[str, Any]) -> dict[str, int]:
    """Rows per table neither committed nor spilled at exit (empty without storage)."""
    storage = summary.get("storage")
    if not storage:
        return {}
    expected = summary.get("pipeline", {}).get("rows_expected", {})
    written, spilled = storage["rows_written"], storage.get("rows_spilled", {})
    lost = {t: n - written.get(t, 0) - spilled.get(t, 0) for t, n in expected.items()}
    return {t: n for t, n in sorted(lost.items()) if n > 0}


def exit_status(summary: Mapping[str, Any]) -> int:
    """0, or `EXIT_ROWS_LOST` (3) when a table's rows were neither committed nor spilled."""
    return EXIT_ROWS_LOST if rows_lost(summary) else 0


def verdict(summary: Mapping[str, Any]) -> str:
    """One line for a human: "ok: ..." or "LOSS: ...", with gaps, completeness and rows lost."""
    products = summary.get("products", {}).values()
    gaps = sum(p["trade_gaps"] for p in products) + summary.get("sequence", {}).get("gaps", 0)
    missed = sum(p["trades_missed"] for p in products) + summary.get("sequence", {}).get(
        "missed", 0
    )
    healed = ""
    if summary.get("backfill", {}).get("enabled"):
        backfilled = sum(p.get("trades_backfilled", 0) for p in products)
        unrecovered = sum(p.get("trades_unrecovered", 0) for p in products)
        healed = f", {backfilled} backfilled, {unrecovered} unrecovered"
    parts = [f"{gaps} gaps ({missed} missed{healed})" if gaps else "0 gaps"]
    storage = summary.get("storage")
    if storage:
        values = [v for v in storage["completeness"].values() if v is not None]
        if values:
            parts.append(f"completeness {min(values):.0%}")
        spilled = sum(storage.get("rows_spilled", {}).values())
        if spilled:
            parts.append(f"{spilled} rows spilled (recovered at the next start)")
    recovery = (summary.get("frame_log") or {}).get("recovery") or {}
    if recovery.get("frames_replayed"):
        restored = sum(recovery["rows_restored"].values())
        derived = max(recovery["derived_frames_lost"].values())
        parts.append(
            f"{restored} rows of an earlier run restored from the frame log "
            f"(derived rows of {derived} frames not rebuilt)"
        )
    elif recovery.get("error"):
        parts.append("frame log off: committed positions unreadable at start")
    lost = rows_lost(summary)
    parts.append(f"{sum(lost.values())} rows lost" + (f" ({', '.join(lost)})" if lost else ""))
    return ("LOSS: " if lost else "ok: ") + ", ".join(parts)


def _pipeline_sections(
    pipeline: Pipeline,
    storage: Mapping[str, _Counts] | None,
    trade_ids: int,
    restored: Mapping[str, int],
) -> dict[str, Any]:
    stats = pipeline.stats
    produced = {t: n + restored.get(t, 0) for t, n in stats.rows.items()}
    # What completeness divides by: rows produced, but for raw_trades the trade ids that exist.
    expected = dict(produced)
    if trade_ids and "raw_trades" in expected:
        expected["raw_trades"] = trade_ids + restored.get("raw_trades", 0)
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
            "rows_expected": produced,
        },
        "model": {
            "ready": bool(models) and all(m.ready for m in models.values()),
            "accuracy_recent": round(sum(accuracies) / len(accuracies), 4) if accuracies else None,
            **_headline(pipeline),
            "products": {
                name: {
                    "ready": m.ready,
                    "accuracy_recent": m.accuracy_recent,
                    "class_counts": list(m.class_counts),
                    **_model_scores(pipeline.products[name]),
                }
                for name, m in models.items()
            },
        },
    }
    if storage is not None:
        written = {table: c.written for table, c in storage.items()}
        summary["storage"] = {
            "rows_written": written,
            "rows_spilled": {t: getattr(c, "spilled", 0) for t, c in storage.items()},
            "rows_recovered": {t: getattr(c, "recovered", 0) for t, c in storage.items()},
            "commit_retries": commit_retries(),
            "completeness": {
                table: round(written.get(table, 0) / n, 6) if n else None
                for table, n in expected.items()
            },
        }
    return summary


# --- the model section's prequential scores (issue 15) -----------------------------------------


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _model_scores(prod: ProductPipeline) -> dict[str, Any]:
    """One product's prequential scores, first prediction and prediction percentiles."""
    classifier = prod.classifier
    scores = classifier.state().scores
    out: dict[str, Any] = {
        "trained": classifier.state().trained,
        "first_prediction_s": _rounded(prod.first_prediction_s),
        "scored_total": classifier.evaluation.scored,
        "prediction_p01": _rounded(prod.predictions.quantile(0.01)),
        "prediction_p50": _rounded(prod.predictions.quantile(0.5)),
        "prediction_p99": _rounded(prod.predictions.quantile(0.99)),
    }
    if scores is None:
        return {**out, "scores": None}
    out["scores"] = {
        "window": scores.samples,
        "label_rate": _rounded(scores.positive_rate),
        "skill": _rounded(scores.skill),
        "log_loss": _rounded(scores.log_loss),
        "log_loss_base": _rounded(scores.log_loss_base),
        "brier": _rounded(scores.brier),
        "brier_base": _rounded(scores.brier_base),
        "auc": _rounded(scores.auc),
        "auc_base": _rounded(scores.auc_base),
        "accuracy": _rounded(scores.accuracy),
        "accuracy_base": _rounded(scores.accuracy_base),
        "calibration": [
            {"low": b.low, "high": b.high, "predicted": _rounded(b.predicted),
             "observed": _rounded(b.observed), "samples": b.samples}
            for b in scores.calibration
        ],
    }  # fmt: skip
    return out


def _headline(pipeline: Pipeline) -> dict[str, Any]:
    """Skill and AUC over every product's window, weighted by samples scored."""
    scored = [s for prod in pipeline.products.values() if (s := prod.classifier.state().scores)]
    if not scored:
        return {"skill": None, "auc": None, "log_loss": None, "log_loss_base": None}
    n = sum(s.samples for s in scored)
    ll = sum(s.log_loss * s.samples for s in scored) / n
    base = sum(s.log_loss_base * s.samples for s in scored) / n
    aucs = [(s.auc, s.samples) for s in scored if s.auc is not None]
    auc = sum(a * k for a, k in aucs) / sum(k for _, k in aucs) if aucs else None
    return {"skill": _rounded(1 - ll / base if base > 0 else 0.0), "auc": _rounded(auc),
            "log_loss": _rounded(ll), "log_loss_base": _rounded(base)}  # fmt: skip
