"""dashboards/alerts.yml: valid Prometheus rules, unit-tested with promtool, on exported metrics;
every rule waits a `for:`, selects quotewatch's job and links an absolute runbook URL."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from quotewatch.config import DEFAULT_RUNBOOK_BASE_URL
from quotewatch.grafana import alerts
from quotewatch.grafana.queries import metric_names

from .exported import exported_metric_names

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "dashboards" / "alerts.yml"
RULE_TESTS = ROOT / "dashboards" / "alerts_test.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"
ALERTS = {
    "QuotewatchFeedSilent",
    "QuotewatchGapsDetected",
    "QuotewatchDataIncomplete",
    "QuotewatchDashboardStale",
    "QuotewatchRemoteWriteFailing",
    "QuotewatchLabelerBufferFull",
    "QuotewatchFrameLogAtBound",
    "QuotewatchFramesReplayed",
}


def _rules() -> dict[str, dict[str, Any]]:
    """alert name -> its rule, as Prometheus reads the file."""
    (group,) = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {rule["alert"]: rule for rule in group["rules"]}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool is not None
    return subprocess.run(
        [promtool, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_every_required_alert_is_defined() -> None:
    rules = _rules()
    assert set(rules) == ALERTS
    assert all(rule["expr"].strip() for rule in rules.values())


def test_alerts_read_only_exported_metrics() -> None:
    exported = exported_metric_names()
    unknown = {
        (name, metric)
        for name, rule in _rules().items()
        for metric in metric_names(rule["expr"]) - exported
    }
    assert not unknown


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_links_a_runbook_section_that_exists() -> None:
    anchors = {
        _anchor(m) for m in re.findall(r"^#+ (.+)$", RUNBOOK.read_text("utf-8"), re.MULTILINE)
    }
    for name, rule in _rules().items():
        url, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert url == DEFAULT_RUNBOOK_BASE_URL, name
        assert anchor in anchors, (name, anchor)
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}


def test_every_rule_waits_before_it_notifies() -> None:
    for name, rule in _rules().items():
        assert re.fullmatch(r"\d+[sm]", rule["for"]), name


def test_every_selector_is_quotewatchs_job() -> None:
    for name, rule in _rules().items():
        for metric in metric_names(rule["expr"]):
            selectors = re.findall(rf"\b{metric}(\{{[^}}]*\}})?", rule["expr"])
            assert selectors, (name, metric)
            assert all(s == '{job="quotewatch"}' for s in selectors), (name, metric, selectors)


@pytest.mark.prometheus
def test_promtool_accepts_the_rules() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


@pytest.mark.prometheus
def test_promtool_unit_tests_pass() -> None:
    result = _promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _test_against(tmp_path: Path, rules: str) -> str:
    """Run the committed promtool tests against `rules`; the failures' output ('' if none)."""
    (tmp_path / "alerts.yml").write_text(rules)
    (tmp_path / "alerts_test.yml").write_text(RULE_TESTS.read_text())
    result = _promtool("test", "rules", str(tmp_path / "alerts_test.yml"))
    return "" if result.returncode == 0 else result.stdout + result.stderr


@pytest.mark.prometheus
def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    # The same tests against rules with an 89% completeness threshold must fail.
    failures = _test_against(tmp_path, RULES.read_text().replace("< 0.99", "< 0.89"))
    assert "QuotewatchDataIncomplete" in failures


@pytest.mark.prometheus
def test_the_frame_log_rule_holds_while_the_log_goes_in_and_out_of_its_bound(
    tmp_path: Path,
) -> None:
    # Without the frames-unlogged arm, a log flapping at its bound never stays firing.
    unlogged = (
        "\n          or\n          sum by (environment, instance) "
        '(increase(wal_frames_unlogged_total{job="quotewatch"}[1m])) > 0'
    )
    rules = RULES.read_text()
    assert unlogged in rules
    failures = _test_against(tmp_path, rules.replace(unlogged, ""))
    assert "QuotewatchFrameLogAtBound" in failures
    assert "staging" in failures


@pytest.mark.prometheus
def test_the_second_app_fires_every_rule_that_ignores_the_job(tmp_path: Path) -> None:
    failures = _test_against(tmp_path, alerts.render().replace('{job="quotewatch"}', ""))
    second_app = failures[failures.index("a second application") :]
    for name in ALERTS:
        assert name in second_app, name


@pytest.mark.prometheus
def test_the_tests_see_each_rule_pending_before_it_fires(tmp_path: Path) -> None:
    failures = _test_against(tmp_path, re.sub(r"\n        for: \S+", "", RULES.read_text()))
    for name in ALERTS:
        assert name in failures, name
