"""all_queries (variables substituted) and the PromQL metric-name tokenizer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from quotewatch.grafana.queries import (
    DEFAULT_VARIABLES,
    QueryError,
    all_queries,
    metric_names,
    substitute,
)

DASHBOARD = {
    "panels": [
        {
            "title": "Rates",
            "targets": [
                {"expr": 'sum(rate(a_total{environment=~"$environment"}[$__rate_interval]))'},
                {"expr": 'increase(b_total{product=~"${product}"}[$__range])'},
            ],
        },
        {"title": "Gauge", "targets": [{"expr": "c_seconds"}]},
    ]
}


def test_all_queries_substitutes_the_defaults() -> None:
    assert all_queries(DASHBOARD) == [
        ("Rates", 'sum(rate(a_total{environment=~".*"}[1m]))'),
        ("Rates", 'increase(b_total{product=~".*"}[5m])'),
        ("Gauge", "c_seconds"),
    ]


def test_all_queries_takes_overrides() -> None:
    queries = all_queries(DASHBOARD, {"environment": "e2e", "__rate_interval": "30s"})
    assert queries[0] == ("Rates", 'sum(rate(a_total{environment=~"e2e"}[30s]))')
    assert queries[1] == ("Rates", 'increase(b_total{product=~".*"}[5m])')


def test_unknown_variable_is_named() -> None:
    with pytest.raises(QueryError, match=r"\$shard"):
        substitute('up{shard="$shard"}', DEFAULT_VARIABLES)


def test_formatted_variable_is_substituted() -> None:
    assert substitute("x{env=~'${environment:regex}'}", {"environment": "a|b"}) == ("x{env=~'a|b'}")


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ("time() - max by (instance) (last_ok_seconds)", {"last_ok_seconds"}),
        (
            "histogram_quantile(0.99, sum by (le, stage) (rate(d_seconds_bucket[5m])))",
            {"d_seconds_bucket"},
        ),
        ("sum without (instance, job) (x_total) > bool 1e-9", {"x_total"}),
        ("a / on (table) group_left (env) b", {"a", "b"}),
        ("a * on (table) group_left b", {"a", "b"}),
        ('x{name="sum(y)", other!~"{z}"} offset 1h30m', {"x"}),
        ("(g unless g offset 5m) or increase(g[5m]) and vector(0)", {"g"}),
        ("max_over_time(timestamp(q)[1h:15s]) > Inf", {"q"}),
        ("sum(rate(ns:metric:rate5m[$__rate_interval]))", {"ns:metric:rate5m"}),
        ('label_values(m_total{environment=~"$environment"}, product)', {"m_total"}),
        ("label_values(m_total, environment)", {"m_total"}),
        ("100 * -0.5 + .5", set()),
        ("x # not_a_metric(y)\n + z", {"x", "z"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


@pytest.mark.parametrize("expr", ["x{a='1'", "x;", "x{a=~'b'}}"])
def test_unreadable_promql_is_an_error(expr: str) -> None:
    with pytest.raises(QueryError):
        metric_names(expr)


NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,12}(_total|_bucket|_seconds)", fullmatch=True)
LABELS = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
VALUES = st.text(alphabet=st.characters(exclude_characters='"\\\n'), max_size=10)
TEMPLATES = st.sampled_from(
    [
        "{m}",
        'sum by ({l}) (rate({m}{{{l}=~"{v}"}}[5m]))',
        "histogram_quantile(0.9, sum by (le, {l}) (rate({m}[$__rate_interval])))",
        "max without ({l}) ({m}) / on ({l}) group_left ({l}) {m}",
        '({m}{{{l}="{v}"}} unless {m}{{{l}="{v}"}} offset 5m) or increase({m}[5m])',
        'count_values("{v}", {m}) > bool 2',
    ]
)


@given(NAMES, LABELS, VALUES, TEMPLATES)
def test_the_metric_is_found_in_any_position(metric: str, label: str, value: str, t: str) -> None:
    assert metric_names(t.format(m=metric, l=label, v=value)) == {metric}
