"""The "System Performance" dashboard: why is the pipeline or the dashboard slow or frozen?"""

from __future__ import annotations

from collections.abc import Sequence

from quotewatch.grafana.panels import (
    Json,
    Panel,
    Query,
    dashboard,
    mean,
    quantile,
    rate,
    selector,
    timeseries,
)

UID = "quotewatch-system-performance"


def _percentiles(histogram: str, quantiles: Sequence[float] = (0.5, 0.99)) -> list[Query]:
    return [Query(quantile(q, histogram), f"p{round(q * 100)}") for q in quantiles]


def _latency_panel(title: str, description: str, histogram: str, width: int = 12) -> Panel:
    return timeseries(title, description, _percentiles(histogram), unit="s", width=width)


def build() -> Json:
    """The System Performance dashboard JSON."""
    rows = [
        [
            timeseries(
                "Pipeline latency",
                "Time from receiving a feed frame to the state snapshot reflecting it. A rising "
                "p99 with a flat p50 is occasional stalls; everything rising is overload.",
                _percentiles("pipeline_message_latency_seconds", (0.5, 0.95, 0.99)),
                unit="s",
                width=24,
            )
        ],
        [
            timeseries(
                "Stage duration breakdown",
                "Mean time per call of each pipeline stage, stacked: roughly how a message's "
                "processing time splits between features, labeler, classifier and writer.",
                [Query(mean("pipeline_callback_duration_seconds", by=("stage",)), "{{stage}}")],
                unit="s",
                width=24,
                stacked=True,
            )
        ],
        [
            _latency_panel(
                "ML predict time",
                "Time for one model prediction (p50, p99).",
                "ml_predict_duration_seconds",
            ),
            _latency_panel(
                "ML train time",
                "Time for one mini-batch partial_fit (p50, p99). Training runs beside "
                "prediction, so spikes here can show up as pipeline latency.",
                "ml_train_duration_seconds",
            ),
        ],
        [
            timeseries(
                "Dashboard staleness",
                "Age of the state snapshot the dashboard last rendered, per instance. Above "
                "10 s the page is showing old data: the pipeline stopped publishing state.",
                [
                    Query(
                        f"max by (instance) ({selector('dashboard_update_age_seconds')})",
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
                    *_percentiles("dashboard_callback_duration_seconds"),
                    Query(f"sum({rate('dashboard_callbacks_total')})", "callbacks/s"),
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
                    Query(f"sum({rate('coinbase_messages_received_total')})", "messages/s"),
                    Query(
                        f"sum({selector('orderbook_updates_per_second')})",
                        "order book updates/s",
                    ),
                    Query(quantile(0.99, "pipeline_message_latency_seconds"), "p99 latency"),
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
                    *_percentiles("pipeline_event_loop_lag_seconds"),
                    Query(quantile(1.0, "pipeline_event_loop_lag_seconds"), "max (bucket bound)"),
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
                        f"sum by (outcome) ({rate('qw_remote_write_samples_total')})",
                        "samples {{outcome}}",
                    ),
                    Query(
                        f"sum by (code) ({rate('qw_remote_write_requests_total')})",
                        "requests {{code}}",
                    ),
                    Query(
                        mean("qw_remote_write_request_duration_seconds"),
                        "mean request time",
                    ),
                ],
                unit="cps",
                width=8,
                right_axis={"mean request time": "s"},
            ),
            timeseries(
                "Remote write: backlog",
                "Samples queued for sending, and seconds since the last successful push (right "
                "axis). A growing queue with a rising age means pushes are failing.",
                [
                    Query(
                        f"max by (instance) ({selector('qw_remote_write_queue_length')})",
                        "queued: {{instance}}",
                    ),
                    Query(
                        "time() - max by (instance) "
                        f"({selector('qw_remote_write_last_success_timestamp_seconds')})",
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
    )
