"""The PromQL inside dashboard JSON: every query ready to run, and the metric names it reads.

`all_queries` substitutes Grafana's variables so a test can run each query against a real
Prometheus; `metric_names` is a small PromQL tokenizer that finds the metrics a query selects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Stand-ins for Grafana's variables: windows long enough for a 15 s push interval, the "All"
# value (".*") for the dashboards' own variables, and quotewatch's job.
DEFAULT_VARIABLES: Mapping[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
    "environment": ".*",
    "job": "quotewatch",
    "instance": ".*",
    "product": ".*",
}

_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
_LABEL_VALUES = re.compile(r"\s*label_values\((?P<selector>.*),\s*\w+\s*\)\s*", re.DOTALL)
_TOKEN = re.compile(
    r"""
      (?P<space>\s+|\#[^\n]*)
    | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    | (?P<range>\[[^\]]*\])
    | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[a-zA-Z]*)
    | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<variable>\$\{[^}]*\}|\$\w+)
    | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(),{}@])
    """,
    re.VERBOSE,
)
# Keywords that take a parenthesised list of label names.
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = _LABEL_LIST_KEYWORDS | {"and", "or", "unless", "offset", "bool", "inf", "nan", "atan2"}


class QueryError(ValueError):
    """A dashboard query cannot be read: an unknown variable or text that is not PromQL."""


def substitute(expr: str, variables: Mapping[str, str]) -> str:
    """Replace `$name`, `${name}` and `${name:format}` with their values from `variables`."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise QueryError(
                f"query uses variable ${name}, which has no value; pass it in `variables` "
                f"(known: {', '.join(sorted(variables))})"
            )
        return variables[name]

    return _VARIABLE.sub(value, expr)


def all_queries(
    dashboard: Mapping[str, Any], variables: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """Every panel query as (panel title, PromQL), with Grafana variables substituted.

    `variables` overrides `DEFAULT_VARIABLES` (e.g. `{"environment": "e2e"}`).
    """
    values = {**DEFAULT_VARIABLES, **(variables or {})}
    return [
        (panel["title"], substitute(target["expr"], values))
        for panel in dashboard.get("panels", [])
        for target in panel.get("targets", [])
    ]


def variable_queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every query variable as (variable name, its `label_values(...)` definition)."""
    return [
        (variable["name"], variable["definition"])
        for variable in dashboard.get("templating", {}).get("list", [])
        if variable.get("type") == "query"
    ]


def _tokens(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise QueryError(f"cannot read PromQL at offset {pos}: {expr[pos : pos + 20]!r}")
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            tokens.append((kind, match.group()))
        pos = match.end()
    return tokens


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, keywords or labels).

    Also accepts a `label_values(selector, label)` variable definition.
    """
    label_values = _LABEL_VALUES.fullmatch(expr)
    if label_values:
        expr = label_values.group("selector")
    tokens = _tokens(expr)
    names: set[str] = set()
    braces = 0
    label_list_next = in_label_list = False
    for i, (kind, text) in enumerate(tokens):
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if label_list_next and text == "(":
            in_label_list = True
        label_list_next = False
        if kind == "op":
            braces += {"{": 1, "}": -1}.get(text, 0)
            if text == ")":
                in_label_list = False
            continue
        if kind != "ident" or braces or in_label_list:
            continue
        if text.lower() in _LABEL_LIST_KEYWORDS:
            label_list_next = True
        elif text.lower() not in _KEYWORDS and following not in ("(", "by", "without"):
            names.add(text)
    if braces:
        raise QueryError(f"unbalanced braces in PromQL: {expr!r}")
    return names
