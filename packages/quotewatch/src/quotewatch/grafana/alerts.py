"""The Prometheus alert rules, as code: `dashboards/alerts.yml` is rendered from here.

Every selector filters on quotewatch's `job`, so another application pushing into the same
environment (its own `process_start_time_seconds`, even its own qw-metrics pusher series) never
fires a quotewatch alert. Every rule waits a `for:` before it notifies, and links to its section
of the runbook with an absolute `runbook_url`, which a pager or chat message can open.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from quotewatch.config import DEFAULT_JOB, DEFAULT_RUNBOOK_BASE_URL
from quotewatch.metrics import (
    FRAME_LOG_GAUGES,
    MESSAGES_RECEIVED,
    REMOTE_WRITE_LAST_SUCCESS,
    REMOTE_WRITE_QUEUE,
    ROWS_EXPECTED,
    ROWS_PENDING,
    ROWS_WRITTEN,
    SEQUENCE_GAPS,
    STATE_AGE,
    WAL_FRAMES_UNLOGGED,
    WAL_REPLAYED_FRAMES,
    sample_name,
)

FILE_NAME = "alerts.yml"
HEADER = """\
# quotewatch alert rules, in Prometheus rule-file format. Generated from
# packages/quotewatch/src/quotewatch/grafana/alerts.py by `quotewatch dashboards build`
# (job from QW_JOB, runbook links from QW_RUNBOOK_BASE_URL): edit the Python, not this file.
#
# Off by default: nothing loads this file until you do. To enable them, add it to a Prometheus
# `rule_files:` list, or load it into Grafana Cloud alerting (see docs/runbook.md, "Alerts").
#
# Unit tests: `promtool test rules dashboards/alerts_test.yml` (tests/quotewatch/grafana runs it).
# Every series the app pushes carries `job`, `instance` and `environment`; the rules select
# quotewatch's job and group by `environment` (and `instance` where one process is at fault).
"""


@dataclass(frozen=True)
class Rule:
    """One alerting rule; `expr` holds `{sel}` where each selector's matchers go."""

    name: str
    why: str  # the comment above the rule
    expr: str
    wait: str  # the rule's `for:`
    severity: str
    summary: str
    description: str
    anchor: str  # the runbook section


def _gaps() -> str:
    gaps = sample_name(SEQUENCE_GAPS)
    return f"""\
sum by (environment, product, source) (
  ({gaps}{{sel}} unless {gaps}{{sel}} offset 5m)
  or increase({gaps}{{sel}}[5m])
) > 0"""


def _completeness() -> str:
    written, expected, pending = sample_name(ROWS_WRITTEN), ROWS_EXPECTED, ROWS_PENDING
    by = "sum by (environment, table)"
    return f"""\
(
  (
    (
      {by} (increase({written}{{sel}}[10m]))
      + {by} (delta({pending}{{sel}}[10m]))
    )
    / {by} (increase({expected}{{sel}}[10m]))
    < 0.99
  )
  or
  (
    ({by} (increase({expected}{{sel}}[10m])) > 0) * 0
    unless on (environment, table)
    ({by} ({written}{{sel}}) or {by} ({pending}{{sel}}))
  )
)
and on (environment, table)
{by} ({expected}{{sel}} offset 10m)"""


def _remote_write() -> str:
    return f"""\
(
  time() - max by (environment, instance) (
    {REMOTE_WRITE_LAST_SUCCESS}{{sel}} > 0 or process_start_time_seconds{{sel}}
  ) > 300
)
or
(
  time() - max by (environment) (
    max_over_time(timestamp({REMOTE_WRITE_QUEUE}{{sel}})[1h:15s])
  ) > 300
)"""


def _frame_log_at_bound() -> str:
    unlogged = sample_name(WAL_FRAMES_UNLOGGED)
    return f"""\
max by (environment, instance) ({FRAME_LOG_GAUGES.AT_BOUND}{{sel}}) > 0
or
sum by (environment, instance) (increase({unlogged}{{sel}}[1m])) > 0"""


def _frames_replayed() -> str:
    return f"""\
max by (environment, instance) ({sample_name(WAL_REPLAYED_FRAMES)}{{sel}}) > 0
and on (environment, instance)
max by (environment, instance) (time() - process_start_time_seconds{{sel}}) < 900"""


RULES = (
    Rule(
        "QuotewatchFeedSilent",
        "Heartbeats alone arrive once a second per product, so a live feed is never quiet for "
        "60 s; `for: 30s` lets a reconnect finish before anyone is paged.",
        f"sum by (environment, instance) (increase({sample_name(MESSAGES_RECEIVED)}{{sel}}[1m])) "
        "== 0",
        "30s",
        "critical",
        "Coinbase feed silent for 90 s ({{ $labels.environment }}, {{ $labels.instance }})",
        "No feed message, heartbeats included, arrived for 90 seconds.",
        "feed-silent",
    ),
    Rule(
        "QuotewatchGapsDetected",
        "Gap counters start at 0; a series born inside the window still counts in full, so a "
        "process that restarted after its first gap is not missed. A gap stays in the 5-minute "
        "window long enough for `for: 1m`.",
        _gaps(),
        "1m",
        "warning",
        "Feed gap detected for {{ $labels.product }} ({{ $labels.source }}, "
        "{{ $labels.environment }})",
        "Ids were missing in the last 5 minutes: trades or frames were lost; see "
        "coinbase_messages_missed_total.",
        "gaps-detected",
    ),
    Rule(
        "QuotewatchDataIncomplete",
        "Rows committed plus the change in rows pending (buffered, awaiting a retry, spilled "
        "awaiting recovery), over rows produced, per table over 10 minutes: exactly 1 when "
        "nothing is lost (increase and delta read the same samples). Windows that start "
        "before the pipeline's counters existed are skipped; a table "
        "with rows expected but none written or pending counts as 0%.",
        _completeness(),
        "5m",
        "critical",
        "Table {{ $labels.table }} is {{ $value | humanizePercentage }} complete over 10 "
        "minutes ({{ $labels.environment }})",
        "Fewer than 99% of the rows the pipeline produced were committed to Iceberg or are "
        "still on their way.",
        "data-incomplete",
    ),
    Rule(
        "QuotewatchDashboardStale",
        "The age is read when metrics are collected, so it rises with no page open; `for: 30s` "
        "so one slow moment does not notify.",
        f"max by (environment, instance) ({sample_name(STATE_AGE)}{{sel}}) > 10",
        "30s",
        "warning",
        "Dashboard data is {{ $value | humanizeDuration }} old ({{ $labels.environment }}, "
        "{{ $labels.instance }})",
        "The pipeline has published no state for over 10 s: the dashboard shows old data.",
        "dashboard-stale",
    ),
    Rule(
        "QuotewatchRemoteWriteFailing",
        "Two views of one failure. Where the app is scraped (its /metrics page), the pusher's "
        "own last-success time shows it; before any success the process start time stands in. "
        "Where the metrics only arrive by remote write, a failing push means no fresh samples "
        "at all, so the newest sample of the environment is older than 5 minutes.",
        _remote_write(),
        "1m",
        "critical",
        "No successful metrics push for 5 minutes ({{ $labels.environment }})",
        "Remote write to Grafana Cloud or Prometheus has failed for 5 minutes, or the app stopped.",
        "remote-write-failing",
    ),
    Rule(
        "QuotewatchLabelerBufferFull",
        "At 100% the labeler evicts unlabelled samples.",
        "max by (environment, instance) "
        "(labeler_buffer_size{sel} / labeler_buffer_capacity{sel}) > 0.9",
        "1m",
        "warning",
        "Labeler buffer {{ $value | humanizePercentage }} full ({{ $labels.environment }}, "
        "{{ $labels.instance }})",
        "The labeler buffer has been over 90% full for a minute; at 100% it evicts unlabelled "
        "samples.",
        "labeler-buffer-full",
    ),
    Rule(
        "QuotewatchFrameLogAtBound",
        "The log leaves its bound as soon as storage makes enough frames durable, so a storage "
        "that barely keeps up takes it in and out of the bound between samples: frames that "
        "went through unlogged in the last minute count as at the bound too. `for: 2m` lets a "
        "flush or two catch up before anyone is notified.",
        _frame_log_at_bound(),
        "2m",
        "warning",
        "Frame log at its size bound: frames go through unlogged ({{ $labels.environment }}, "
        "{{ $labels.instance }})",
        "The frame log reached --wal-max-bytes because storage has not committed or spilled "
        "its frames' rows; new frames are processed but not logged, so a crash now loses "
        "their rows.",
        "frame-log-at-bound",
    ),
    Rule(
        "QuotewatchFramesReplayed",
        "Information, not a page: replay runs only at start, so the counter's value is what "
        "this process restored, and it is shown for the first 15 minutes of the process. A "
        "clean shutdown leaves the log empty: frames to replay mean the previous run ended "
        "without storing them (kill -9, OOM kill, power loss). `for: 1m` like every rule.",
        _frames_replayed(),
        "1m",
        "info",
        "Frame log replayed {{ $value }} frames at start after an unclean exit "
        "({{ $labels.environment }}, {{ $labels.instance }})",
        "The previous run ended without storing frames it had logged; their raw rows were "
        "restored, but their features and predictions are not rebuilt (see "
        "wal_derived_frames_lost_total).",
        "frames-replayed",
    ),
)


def _comment(text: str, indent: str, width: int = 100) -> list[str]:
    lines: list[str] = []
    line = f"{indent}#"
    for word in text.split():
        if len(line) + 1 + len(word) > width:
            lines.append(line)
            line = f"{indent}#"
        line += f" {word}"
    return [*lines, line]


def render(*, job: str = DEFAULT_JOB, runbook_url: str = DEFAULT_RUNBOOK_BASE_URL) -> str:
    """The rule file's text for `job`, with runbook links under `runbook_url`."""
    selector = "{" + f"job={json.dumps(job)}" + "}"
    out = [HEADER + "groups:", "  - name: quotewatch", "    rules:"]
    for i, rule in enumerate(RULES):
        if i:
            out.append("")
        out += _comment(rule.why, " " * 6)
        out += [f"      - alert: {rule.name}", "        expr: |"]
        out += [f"          {line}" for line in rule.expr.replace("{sel}", selector).splitlines()]
        out += [
            f"        for: {rule.wait}",
            "        labels:",
            f"          severity: {rule.severity}",
            "        annotations:",
            # JSON strings are YAML double-quoted scalars.
            f"          summary: {json.dumps(rule.summary)}",
            f"          description: {json.dumps(rule.description)}",
            f"          runbook_url: {json.dumps(f'{runbook_url}#{rule.anchor}')}",
        ]
    return "\n".join(out) + "\n"
