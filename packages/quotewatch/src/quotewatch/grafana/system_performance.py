"""The "System Performance" dashboard: why is the pipeline or the dashboard slow or frozen?"""

from __future__ import annotations

from collections.abc import Sequence

from quotewatch.config import DEFAULT_JOB, DEFAULT_RUNBOOK_BASE_URL
from quotewatch.grafana.panels import (
    PIPELINE_HEALTH_UID,
    SYSTEM_PERFORMANCE_UID,
    Json,
    Panel,
    Query,
    dashboard,
    header_links,
    mean,
    quantile,
    rate,
    selector,
    timeseries,
)
from quotewatch.metrics import (
    DASHBOARD_CALLBACK_DURATION,
    DASHBOARD_CALLBACKS,
    EVENT_LOOP_LAG,
    MESSAGE_LATENCY,
    MESSAGES_RECEIVED,
    ML_PREDICT,
    ML_TRAIN,
    ORDERBOOK_UPDATES_PER_SECOND,
    REMOTE_WRITE_LAST_SUCCESS,
    REMOTE_WRITE_QUEUE,
    REMOTE_WRITE_REQUEST_DURATION,
    REMOTE_WRITE_REQUESTS,
    REMOTE_WRITE_SAMPLES,
    STAGE_DURATION,
    STATE_AGE,
    sample_name,
)

UID = SYSTEM_PERFORMANCE_UID


def _percentiles(histogram: str, quantiles: Sequence[float] = (0.5, 0.99)) -> list[Query]:
    return [Query(quantile(q, histogram), f"p{round(q * 100)}") for q in quantiles]


def _latency_panel(title: str, description: str, histogram: str, width: int = 12) -> Panel:
    return timeseries(title, description, _percentiles(histogram), unit="s", width=width)


def build(*, job: str = DEFAULT_JOB, runbook_url: str = DEFAULT_RUNBOOK_BASE_URL) -> Json:
    """The System Performance dashboard JSON, for `job`, linking to the runbook at
    `runbook_url`."""
    rows = [
        [
            timeseries(
                "Pipeline latency",
                "Time from receiving a feed frame to the state snapshot reflecting it. A rising "
                "p99 with a flat p50 is occasional stalls; everything rising is overload.",
                _percentiles(sample_name(MESSAGE_LATENCY), (0.5, 0.95, 0.99)),
                unit="s",
                width=24,
            )
        ],
        [
            timeseries(
                "Stage duration breakdown",
                "Mean time per call of each pipeline stage, stacked: roughly how a message's "
                "processing time splits between features, labeler, classifier and writer.",
                [Query(mean(sample_name(STAGE_DURATION), by=("stage",)), "{{stage}}")],
                unit="s",
                width=24,
                stacked=True,
            )
        ],
        [
            _latency_panel(
                "ML predict time",
                "Time for one model prediction (p50, p99).",
                sample_name(ML_PREDICT),
            ),
            _latency_panel(
                "ML train time",
                "Time for one training step (p50, p99): the labels of one book update. "
                "Training runs beside prediction, so spikes here can show up as pipeline "
                "latency.",
                sample_name(ML_TRAIN),
            ),
        ],
        [
            timeseries(
                "Dashboard staleness",
                "Seconds since the pipeline last published state, per instance, read whenever "
                "metrics are collected (whether or not a page is open). Above 10 s the "
                "pipeline stopped publishing: the dashboard shows old data.",
                [
                    Query(
                        f"max by (instance) ({selector(sample_name(STATE_AGE))})",
                        "{{instance}}",
                    )
                ],
                unit="s",
            ),
            timeseries(
                "Dashboard render time",
                "Time to run one dashboard callback (p50, p99), and callbacks per second on the "
                "right axis. No callbacks means no browser has the page open.",
                [
                    *_percentiles(sample_name(DASHBOARD_CALLBACK_DURATION)),
                    Query(f"sum({rate(sample_name(DASHBOARD_CALLBACKS))})", "callbacks/s"),
                ],
                unit="s",
                right_axis={"callbacks/s": "cps"},
            ),
        ],
        [
            timeseries(
                "Message rate vs latency",
                "Throughput (left) against p99 pipeline latency (right). Latency that rises "
                "with the message rate is load; latency rising on its own is a stall.",
                [
                    Query(f"sum({rate(sample_name(MESSAGES_RECEIVED))})", "messages/s"),
                    Query(
                        f"sum({selector(sample_name(ORDERBOOK_UPDATES_PER_SECOND))})",
                        "order book updates/s",
                    ),
                    Query(quantile(0.99, sample_name(MESSAGE_LATENCY)), "p99 latency"),
                ],
                unit="cps",
                width=24,
                right_axis={"p99 latency": "s"},
            )
        ],
        [
            timeseries(
                "Event-loop lag",
                "How late the feed's event loop wakes a periodic probe: p50, p99 and the upper "
                "bound of the highest bucket hit. "
                "Anything near a second means something blocks the loop: that is a freeze.",
                [
                    *_percentiles(sample_name(EVENT_LOOP_LAG)),
                    Query(quantile(1.0, sample_name(EVENT_LOOP_LAG)), "max (bucket bound)"),
                ],
                unit="s",
                width=8,
            ),
            timeseries(
                "Remote write: throughput",
                "Samples per second by outcome and requests per second by HTTP status code "
                "from the metrics pusher to Grafana Cloud or Prometheus.",
                [
                    Query(
                        f"sum by (outcome) ({rate(REMOTE_WRITE_SAMPLES)})",
                        "samples {{outcome}}",
                    ),
                    Query(
                        f"sum by (code) ({rate(REMOTE_WRITE_REQUESTS)})",
                        "requests {{code}}",
                    ),
                    Query(
                        mean(REMOTE_WRITE_REQUEST_DURATION),
                        "mean request time",
                    ),
                ],
                unit="cps",
                width=8,
                right_axis={"mean request time": "s"},
            ),
            timeseries(
                "Remote write: backlog",
                "Snapshots of the registry waiting to be sent (one per push interval), and "
                "seconds since the last successful push (right axis). A growing queue with a "
                "rising age means pushes are failing.",
                [
                    Query(
                        f"max by (instance) ({selector(REMOTE_WRITE_QUEUE)})",
                        "snapshots queued: {{instance}}",
                    ),
                    Query(
                        f"time() - max by (instance) ({selector(REMOTE_WRITE_LAST_SUCCESS)})",
                        "since last success: {{instance}}",
                    ),
                ],
                unit="short",
                width=8,
                right_axis={"since last success": "s"},
            ),
        ],
        [
            timeseries(
                "Process CPU",
                "CPU seconds per second used by the quotewatch process, per instance "
                "(1.0 = one full core). Pinned at 1.0 means the Python process is saturated.",
                [
                    Query(
                        f"sum by (instance) ({rate('process_cpu_seconds_total')})",
                        "{{instance}}",
                    )
                ],
                unit="percentunit",
            ),
            timeseries(
                "Process memory",
                "Resident memory of the quotewatch process, per instance. Steady growth is "
                "a buffer or cache that never empties.",
                [
                    Query(
                        f"max by (instance) ({selector('process_resident_memory_bytes')})",
                        "{{instance}}",
                    )
                ],
                unit="bytes",
            ),
        ],
    ]
    return dashboard(
        uid=UID,
        title="quotewatch / System Performance",
        description="Why is it slow or frozen? Pipeline latency and its stages, ML timings, "
        "dashboard staleness and render time, event-loop lag, the metrics pusher and the process.",
        rows=rows,
        links=header_links(
            "Data Pipeline Health",
            "Is every message captured and every row stored?",
            PIPELINE_HEALTH_UID,
            runbook_url,
        ),
        job=job,
    )
