"""Copies for externally shared dashboards: no template variables, same queries."""

from __future__ import annotations

import json

import pytest
from quotewatch.grafana.build import build_all
from quotewatch.grafana.queries import all_queries
from quotewatch.grafana.sharing import for_sharing

from .conftest import TOKEN, FakeGrafana, run_cli

UID = "grafanacloud-prom"


@pytest.mark.parametrize("name", sorted(build_all()))
def test_shared_copy_has_no_variables_and_the_same_queries(name: str) -> None:
    original = build_all()[name]
    before = json.dumps(original)

    shared = for_sharing(original, datasource_uid=UID, environment="production")

    text = json.dumps(shared)
    for variable in ("$datasource", "${datasource}", "$environment", "$product"):
        assert variable not in text
    assert "$__rate_interval" in text
    assert shared["templating"] == {"list": []}
    assert shared["uid"] == f"{original['uid']}-shared"
    assert len(shared["uid"]) <= 40  # Grafana's limit
    assert shared["title"].endswith("(production)")
    assert all_queries(shared) == all_queries(original, {"environment": "production"})
    for panel in shared["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": UID}
        assert all(t["datasource"]["uid"] == UID for t in panel["targets"])
    assert json.dumps(original) == before  # the original is untouched


@pytest.mark.parametrize(
    ("uid", "environment"), [("a b", "production"), (UID, 'prod"}'), ("", "production")]
)
def test_bad_values_are_rejected(uid: str, environment: str) -> None:
    dashboard = next(iter(build_all().values()))
    with pytest.raises(ValueError, match="must be letters, digits"):
        for_sharing(dashboard, datasource_uid=uid, environment=environment)


def test_cli_pushes_shared_copies(
    fake_grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GRAFANA_DASHBOARD_TOKEN", TOKEN)
    argv = ["dashboards", "push", "--grafana-url", fake_grafana.url, "--shared-datasource", UID]

    assert run_cli([*argv, "--environment", "demo"]) == 0, capsys.readouterr().err

    assert fake_grafana.problems == []
    assert set(fake_grafana.dashboards) == {
        "quotewatch-pipeline-health-shared",
        "quotewatch-system-performance-shared",
    }
    for stored in fake_grafana.dashboards.values():
        assert stored["dashboard"]["templating"] == {"list": []}
        queries = all_queries(stored["dashboard"])
        assert all('environment=~"demo"' in expr for _, expr in queries)
