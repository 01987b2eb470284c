"""dashboards/alerts.yml: valid Prometheus rules, unit-tested with promtool, on exported metrics."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
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
}


def _rules() -> dict[str, dict[str, str]]:
    """alert name -> {"expr": ..., "runbook": ...}, read from the YAML's block scalars."""
    rules: dict[str, dict[str, str]] = {}
    lines = RULES.read_text(encoding="utf-8").splitlines()
    current: dict[str, str] = {}
    for i, line in enumerate(lines):
        if match := re.match(r"\s*- alert: (\w+)$", line):
            current = rules.setdefault(match.group(1), {})
        elif match := re.match(r"(\s*)expr: \|$", line):
            indent = len(match.group(1))
            body = []
            for following in lines[i + 1 :]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                body.append(following)
            current["expr"] = "\n".join(body)
        elif match := re.match(r'\s*runbook: "([^"]+)"$', line):
            current["runbook"] = match.group(1)
    return rules


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
        path, _, anchor = rule["runbook"].partition("#")
        assert path == "docs/runbook.md", name
        assert anchor in anchors, (name, anchor)


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


@pytest.mark.prometheus
def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    # The same tests against rules with an 89% completeness threshold must fail.
    (tmp_path / "alerts.yml").write_text(RULES.read_text().replace("< 0.99", "< 0.89"))
    (tmp_path / "alerts_test.yml").write_text(RULE_TESTS.read_text())
    result = _promtool("test", "rules", str(tmp_path / "alerts_test.yml"))
    assert result.returncode != 0
    assert "QuotewatchDataIncomplete" in result.stdout + result.stderr
