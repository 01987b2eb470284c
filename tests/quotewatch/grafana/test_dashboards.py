"""The committed dashboards: generated from code, importable, laid out right, and correct PromQL."""

from __future__ import annotations

import collections
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from quotewatch.cli import COMMANDS
from quotewatch.config import DEFAULT_RUNBOOK_BASE_URL
from quotewatch.grafana import alerts
from quotewatch.grafana.build import DASHBOARDS, build_all, render
from quotewatch.grafana.queries import all_queries, metric_names, variable_queries

from .conftest import run_cli
from .exported import exported_metric_names, metrics_with_label

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD_DIR = ROOT / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
UIDS = {
    "data-pipeline-health.json": "quotewatch-pipeline-health",
    "system-performance.json": "quotewatch-system-performance",
}
COUNTER_SERIES = ("_total", "_bucket", "_sum", "_count")

BUILT = build_all()
DASHBOARD_PARAMS = pytest.mark.parametrize("name", sorted(DASHBOARDS))


def _exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


@DASHBOARD_PARAMS
def test_committed_json_is_the_generated_json(name: str) -> None:
    committed = (DASHBOARD_DIR / name).read_text(encoding="utf-8")
    assert committed == render(BUILT[name]), "stale: run `quotewatch dashboards build`"


def test_dashboards_is_a_quotewatch_command() -> None:
    assert "dashboards" in COMMANDS


def test_committed_alert_rules_are_the_generated_ones() -> None:
    committed = (DASHBOARD_DIR / alerts.FILE_NAME).read_text(encoding="utf-8")
    assert committed == alerts.render(), "stale: run `quotewatch dashboards build`"


def test_cli_build_writes_the_same_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QW_JOB", raising=False)
    monkeypatch.delenv("QW_RUNBOOK_BASE_URL", raising=False)
    assert run_cli(["dashboards", "build", "--out", str(tmp_path / "out")]) == 0
    for name in [*DASHBOARDS, alerts.FILE_NAME]:
        assert (tmp_path / "out" / name).read_text() == (DASHBOARD_DIR / name).read_text()


def test_cli_build_takes_job_and_runbook_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QW_JOB", "qw-prod")
    monkeypatch.setenv("QW_RUNBOOK_BASE_URL", "https://wiki.example.com/qw")
    assert run_cli(["dashboards", "build", "--out", str(tmp_path)]) == 0
    rules = (tmp_path / alerts.FILE_NAME).read_text()
    assert 'job="quotewatch"' not in rules
    assert rules.count('{job="qw-prod"}') >= 6
    assert '"https://wiki.example.com/qw#feed-silent"' in rules
    for name in DASHBOARDS:
        dashboard = json.loads((tmp_path / name).read_text())
        (job,) = [v for v in dashboard["templating"]["list"] if v["name"] == "job"]
        assert job["current"]["value"] == "qw-prod"
        assert "https://wiki.example.com/qw" in {link["url"] for link in dashboard["links"]}


@DASHBOARD_PARAMS
def test_json_is_importable(name: str) -> None:
    dashboard = json.loads((DASHBOARD_DIR / name).read_text(encoding="utf-8"))
    assert "id" not in dashboard
    assert dashboard["uid"] == UIDS[name]
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["title"].startswith("quotewatch / ")
    assert dashboard["panels"]


@DASHBOARD_PARAMS
def test_panel_ids_are_unique(name: str) -> None:
    ids = [p["id"] for p in BUILT[name]["panels"]]
    assert len(ids) == len(set(ids))
    assert all(isinstance(i, int) and i > 0 for i in ids)


@DASHBOARD_PARAMS
def test_panels_fit_24_columns_without_overlap(name: str) -> None:
    boxes = []
    for panel in BUILT[name]["panels"]:
        pos = panel["gridPos"]
        assert min(pos["w"], pos["h"]) > 0, panel["title"]
        assert min(pos["x"], pos["y"]) >= 0, panel["title"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        boxes.append((panel["title"], pos))
    for (a, p), (b, q) in itertools.combinations(boxes, 2):
        apart = (
            p["x"] + p["w"] <= q["x"]
            or q["x"] + q["w"] <= p["x"]
            or p["y"] + p["h"] <= q["y"]
            or q["y"] + q["h"] <= p["y"]
        )
        assert apart, f"{a!r} overlaps {b!r}"


@DASHBOARD_PARAMS
def test_every_panel_has_a_query(name: str) -> None:
    for panel in BUILT[name]["panels"]:
        targets = panel["targets"]
        assert targets, panel["title"]
        assert all(t["expr"].strip() for t in targets), panel["title"]
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def _datasources(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        if "datasource" in node:
            yield node["datasource"]
        for value in node.values():
            yield from _datasources(value)
    elif isinstance(node, list):
        for value in node:
            yield from _datasources(value)


@DASHBOARD_PARAMS
def test_datasource_variable_is_used_everywhere(name: str) -> None:
    dashboard = BUILT[name]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert all(t["datasource"] == DATASOURCE for t in panel["targets"]), panel["title"]
    # Everything but Grafana's built-in annotation source reads the variable.
    used = [ds for ds in _datasources(dashboard) if ds.get("uid") != "-- Grafana --"]
    assert used
    assert all(ds == DATASOURCE for ds in used)


@DASHBOARD_PARAMS
def test_filter_variables(name: str) -> None:
    variables = {v["name"]: v for v in BUILT[name]["templating"]["list"]}
    uses_product = any('product=~"$product"' in expr for _, expr in _exprs(BUILT[name]))
    expected = ["environment", "instance", *(["product"] if uses_product else [])]
    for var in expected:
        variable = variables[var]
        assert variable["type"] == "query"
        assert variable["definition"].startswith("label_values(")
        assert variable["definition"].endswith(f", {var})")
        assert variable["includeAll"] is True
        assert variable["multi"] is True
        assert variable["allValue"] == ".*"
    for var in expected[1:]:
        assert 'environment=~"$environment", job=~"$job"' in variables[var]["definition"]
    # One job, quotewatch's, by default; never "All", which would draw other apps' series.
    job = variables["job"]
    assert job["current"]["value"] == "quotewatch"
    assert job["includeAll"] is False
    assert job["multi"] is False
    assert job["definition"].startswith("label_values(coinbase_messages_received_total{")
    assert ("product" in variables) == uses_product
    assert [v["name"] for v in BUILT[name]["templating"]["list"]] == [
        "datasource", "environment", "job", *expected[1:]
    ]  # fmt: skip


def test_a_product_variable_only_where_metrics_have_a_product() -> None:
    with_product = metrics_with_label("product")
    for name in DASHBOARDS:
        used = {m for _, expr in _exprs(BUILT[name]) for m in metric_names(expr)}
        has_variable = any(v["name"] == "product" for v in BUILT[name]["templating"]["list"])
        assert has_variable == bool(used & with_product), name
    assert any(
        v["name"] == "product" for v in BUILT["data-pipeline-health.json"]["templating"]["list"]
    )


@DASHBOARD_PARAMS
def test_links_to_the_other_dashboard_and_the_runbook(name: str) -> None:
    (other,) = set(UIDS.values()) - {UIDS[name]}
    links = {link["url"]: link for link in BUILT[name]["links"]}
    assert set(links) == {f"/d/{other}", DEFAULT_RUNBOOK_BASE_URL}
    assert links[f"/d/{other}"]["keepTime"] is True
    assert links[f"/d/{other}"]["includeVars"] is True
    assert DEFAULT_RUNBOOK_BASE_URL.startswith("https://")
    assert DEFAULT_RUNBOOK_BASE_URL.endswith("/docs/runbook.md")


@DASHBOARD_PARAMS
def test_every_metric_is_one_the_app_exports(name: str) -> None:
    exported = exported_metric_names()
    queries = [*_exprs(BUILT[name]), *variable_queries(BUILT[name])]
    unknown = {(title, m) for title, expr in queries for m in metric_names(expr) - exported}
    assert not unknown


@DASHBOARD_PARAMS
def test_every_selector_filters_by_environment_and_product_where_labelled(name: str) -> None:
    with_product = metrics_with_label("product")
    for title, expr in _exprs(BUILT[name]):
        for metric in metric_names(expr):
            selectors = re.findall(rf"\b{metric}(\{{[^}}]*\}})?", expr)
            for matchers in selectors:
                for matcher in (
                    'environment=~"$environment"', 'job=~"$job"', 'instance=~"$instance"'
                ):  # fmt: skip
                    assert matcher in matchers, (title, expr)
                has_product = 'product=~"$product"' in matchers
                assert has_product == (metric in with_product), (title, metric)


# `(x unless x offset w)`: a counter series born inside the window counts in full.
NEW_SERIES = re.compile(r"\((\w+_total)(\{[^}]*\}) unless \1\2 offset \S+\)")


@DASHBOARD_PARAMS
def test_counters_and_only_counters_go_through_rate_or_increase(name: str) -> None:
    for title, expr in _exprs(BUILT[name]):
        rest = NEW_SERIES.sub("", expr)
        selectors = re.findall(r"(\w+\()?(\w+)\{", rest)
        assert selectors, (title, expr)
        for function, metric in selectors:
            counter_like = metric.endswith(COUNTER_SERIES)
            assert counter_like == (function in ("rate(", "increase(")), (title, metric)


@DASHBOARD_PARAMS
def test_quantiles_aggregate_bucket_rates_by_le(name: str) -> None:
    quantile = re.compile(
        r"histogram_quantile\((0\.\d+|1\.0), sum by \(le(, \w+)*\) "
        r"\(rate\(\w+_bucket\{[^}]*\}\[\$__rate_interval\]\)\)\)"
    )
    found = 0
    for title, expr in _exprs(BUILT[name]):
        found += expr.count("histogram_quantile")
        assert expr.count("histogram_quantile") == len(quantile.findall(expr)), (title, expr)
    assert found > 0 or name == "data-pipeline-health.json"


@DASHBOARD_PARAMS
def test_bucket_panels_use_heatmap_format_grouped_by_le(name: str) -> None:
    for panel in BUILT[name]["panels"]:
        for target in panel["targets"]:
            bucket_query = (
                "_bucket" in target["expr"] and "histogram_quantile" not in target["expr"]
            )
            assert (target.get("format") == "heatmap") == bucket_query, panel["title"]
            if bucket_query:
                assert target["expr"].startswith("sum by (le) ("), panel["title"]
        if panel["type"] == "heatmap":
            assert panel["options"]["calculate"] is False
            assert all(t.get("format") == "heatmap" for t in panel["targets"])


def _panel(name: str, title: str) -> dict[str, Any]:
    return next(p for p in BUILT[name]["panels"] if p["title"] == title)


def test_completeness_counts_pending_rows_per_table() -> None:
    (target,) = _panel("data-pipeline-health.json", "Data completeness")["targets"]
    assert target["instant"] is True
    scope = 'environment=~"$environment", job=~"$job", instance=~"$instance"'
    assert target["expr"] == (
        "100 * (sum by (table) "
        f"(increase(iceberg_rows_written_total{{{scope}}}[$__range])) "
        f"+ sum by (table) (delta(pipeline_rows_pending{{{scope}}}[$__range]))) "
        "/ sum by (table) "
        f"(increase(pipeline_rows_expected_total{{{scope}}}[$__range]))"
    )


def test_ring_buffers_carry_no_alarm_thresholds() -> None:
    queues = _panel("data-pipeline-health.json", "Queue usage")
    rings = _panel("data-pipeline-health.json", "Ring buffer fill")
    assert [t["legendFormat"] for t in queues["targets"]] == ["labeler", "storage_writer"]
    assert [t["legendFormat"] for t in rings["targets"]] == ["trade"]
    steps = queues["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 70, 90]
    (only,) = rings["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert only["value"] is None


def _rows(name: str) -> list[list[str]]:
    rows: dict[int, list[tuple[int, str]]] = collections.defaultdict(list)
    for panel in BUILT[name]["panels"]:
        rows[panel["gridPos"]["y"]].append((panel["gridPos"]["x"], panel["title"]))
    return [[title for _, title in sorted(rows[y])] for y in sorted(rows)]


def test_pipeline_health_layout_follows_the_design() -> None:
    assert _rows("data-pipeline-health.json") == [
        ["Message rate", "Write rate"],
        ["Data completeness", "Gaps detected", "Queue usage", "Ring buffer fill"],
        ["Messages received vs rows expected vs rows written"],
        ["Flush latency", "Flush batch size"],
        ["Completeness over time", "Feed and storage incidents"],
        ["Frame log state", "Frame log size", "Frame log writes"],
        ["Frames unlogged", "Frame log replay at start"],
        ["Model skill", "Log loss: model vs base rate", "ROC AUC"],
    ]
    assert _panel("data-pipeline-health.json", "Data completeness")["type"] == "gauge"
    assert _panel("data-pipeline-health.json", "Flush latency")["type"] == "heatmap"
    gaps = {t["expr"] for t in _panel("data-pipeline-health.json", "Gaps detected")["targets"]}
    assert {m for e in gaps for m in metric_names(e)} == {
        "coinbase_sequence_gaps_total",
        "coinbase_messages_missed_total",
    }
    assert all(e.startswith("sum by (source) (") for e in gaps)


def test_frame_log_state_reads_as_words_and_no_log_is_not_zero() -> None:
    state = _panel("data-pipeline-health.json", "Frame log state")
    (target,) = state["targets"]
    assert metric_names(target["expr"]) == {"wal_at_bound"}
    defaults = state["fieldConfig"]["defaults"]
    (mapping,) = defaults["mappings"]
    assert {v: o["text"] for v, o in mapping["options"].items()} == {
        "0": "logging",
        "1": "AT BOUND",
    }
    assert [s["value"] for s in defaults["thresholds"]["steps"]] == [None, 1]
    assert defaults["noValue"] == "no frame log"
    replay = _panel("data-pipeline-health.json", "Frame log replay at start")
    assert [metric_names(t["expr"]) for t in replay["targets"]] == [
        {"wal_replayed_frames_total"},
        {"wal_derived_frames_lost_total"},
    ]


def test_system_performance_layout_follows_the_design() -> None:
    assert _rows("system-performance.json") == [
        ["Pipeline latency"],
        ["Stage duration breakdown"],
        ["ML predict time", "ML train time"],
        ["Dashboard staleness", "Dashboard render time"],
        ["Message rate vs latency"],
        ["Event-loop lag", "Remote write: throughput", "Remote write: backlog"],
        ["Process CPU", "Process memory"],
    ]
    latency = _panel("system-performance.json", "Pipeline latency")
    assert [t["legendFormat"] for t in latency["targets"]] == ["p50", "p95", "p99"]
    stages = _panel("system-performance.json", "Stage duration breakdown")
    assert stages["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"
    assert "by (stage)" in stages["targets"][0]["expr"]
    dual = _panel("system-performance.json", "Message rate vs latency")
    (override,) = dual["fieldConfig"]["overrides"]
    assert {"id": "custom.axisPlacement", "value": "right"} in override["properties"]
    assert re.match(override["matcher"]["options"], "p99 latency")


@DASHBOARD_PARAMS
def test_all_queries_are_ready_to_run(name: str) -> None:
    queries = all_queries(BUILT[name], {"environment": "e2e"})
    assert len(queries) == sum(len(p["targets"]) for p in BUILT[name]["panels"])
    for title, expr in queries:
        assert "$" not in expr, (title, expr)
        assert 'environment=~"e2e"' in expr, (title, expr)
