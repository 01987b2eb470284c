"""Frames nested thousands of levels deep on every field path, of both feeds: `parse_frame` and
a live run over websockets skip and count them instead of raising (issue 18: the builtin repr
in error messages raised RecursionError at ~1000 levels and killed `quotewatch run`)."""

from __future__ import annotations

import asyncio
import copy
import json
import random
from typing import Any

import pytest
from quotewatch.app.runner import Runner, RunOptions
from quotewatch.config import Settings
from quotewatch.ingest.client import FeedClient
from quotewatch.ingest.invalid import Invalid, brief
from quotewatch.ingest.parser import Feed, Parsed, parse_frame
from quotewatch.simulate.advanced_protocol import AdvancedSession
from quotewatch.simulate.exchange_protocol import ExchangeSession
from quotewatch.simulate.faults import Faults
from quotewatch.simulate.server import LocalExchange
from support.coinbase_messages import ADVANCED, EXCHANGE
from support.ingest import FAST_BACKOFF

DEPTH = 10_000
# orjson refuses text nested over 1024 levels (malformed_json); just under it, the text decodes
# and the readers' error messages see the whole depth.
TEXT_DEPTHS = (1_000, 1_023, DEPTH)
_HOLE = "\u0000hole\u0000"
# Fields no reader uses, or takes as free text (an error's message): a frame with a deep value
# there is still valid.
UNREAD = {"maker_order_id", "taker_order_id", "client_id", "sequence", "timestamp", "message",
          "reason"}  # fmt: skip


def deep(depth: int) -> Any:
    """Lists and objects alternating, ``depth`` levels deep."""
    value: Any = "x"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def deep_text(depth: int) -> str:
    """The JSON text of `deep(depth)`, built without recursion."""
    opens = "".join("[" if level % 2 else '{"k":' for level in reversed(range(depth)))
    closes = "".join("]" if level % 2 else "}" for level in range(depth))
    return opens + '"x"' + closes


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(paths(value, (*prefix, i)))
    return out


def replaced(msg: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(msg)
    parent: Any = out
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return out


def cases() -> list[tuple[Feed, str, tuple[Any, ...]]]:
    return [
        (feed, name, path)
        for feed, pool in ((Feed.EXCHANGE, EXCHANGE), (Feed.ADVANCED, ADVANCED))
        for name, msg in pool.items()
        for path in paths(msg)
    ]


CASES = cases()


def test_every_field_path_of_both_feeds_is_covered() -> None:
    assert len(CASES) > 100
    assert {feed for feed, _, _ in CASES} == set(Feed)
    assert {path[0] for _, _, path in CASES} >= {"type", "product_id", "events", "channel"}


@pytest.mark.parametrize(("feed", "name", "path"), CASES, ids=[f"{f}-{n}-{p}" for f, n, p in CASES])
def test_deep_values_on_any_path_are_skipped_and_counted(
    feed: Feed, name: str, path: tuple[Any, ...]
) -> None:
    msg = (EXCHANGE if feed is Feed.EXCHANGE else ADVANCED)[name]
    # Snapshot levels' event_time is not read (the envelope stamps the snapshot).
    unread = any(key in UNREAD for key in path) or (name, path[-1]) == ("l2_snapshot", "event_time")
    frames: list[tuple[str | dict[str, Any], int]] = [(replaced(msg, path, deep(DEPTH)), 0)]
    template = json.dumps(replaced(msg, path, _HOLE))
    frames += [(template.replace(json.dumps(_HOLE), deep_text(d)), d) for d in TEXT_DEPTHS]
    for frame, text_depth in frames:
        result = parse_frame(frame, 1, feed)
        if text_depth > 1024:
            assert isinstance(result, Invalid)
            assert result.reason == "malformed_json"
        elif unread:
            assert isinstance(result, Parsed | Invalid)
        else:
            assert isinstance(result, Invalid), (path, result)
            assert len(result.detail) <= 200


def test_brief_is_bounded_for_any_json_value() -> None:
    assert brief(deep(DEPTH)) == "[{'k': [{...}]}]"
    assert len(brief(deep(DEPTH))) <= 120
    assert len(brief("x" * 10**6)) <= 120
    assert brief(10**5000) == "<int of 16610 bits>"
    assert brief([1, "a", None]) == "[1, 'a', None]"


def _deep_malformed(self: Any, rng: random.Random, after: Any) -> str:
    """Instead of the exchange's usual malformed frames: a real-shaped message with one field
    nested 1,000 levels deep (it still decodes; the readers must reject it)."""
    pool = EXCHANGE if isinstance(self, ExchangeSession) else ADVANCED
    msg = pool[rng.choice(sorted(pool))]
    path = rng.choice([p for p in paths(msg) if not any(key in UNREAD for key in p)])
    template = json.dumps(replaced(msg, path, _HOLE))
    return template.replace(json.dumps(_HOLE), deep_text(1_000))


@pytest.mark.parametrize("feed", list(Feed))
def test_a_live_run_survives_deep_frames_and_counts_them(
    feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ExchangeSession, "malformed_frame", _deep_malformed)
    monkeypatch.setattr(AdvancedSession, "malformed_frame", _deep_malformed)
    products = ("BTC-USD",)
    settings = Settings(port=0, products=products)
    runner = Runner(settings, feed, RunOptions(storage=False, dashboard=False, duration=2.5))
    injected: dict[str, int] = {}

    async def scenario() -> dict[str, Any]:
        async with LocalExchange(products, seed=3, speed=4.0, faults=Faults(malformed=0.1)) as ex:
            url = ex.exchange_url if feed is Feed.EXCHANGE else ex.advanced_url
            client = FeedClient(runner.session, url=url, backoff=FAST_BACKOFF)
            summary = await runner.run(client.run)
            injected["malformed"] = ex.injected.malformed
            injected["connections"] = len(ex.injected.connections)
            return summary

    summary = asyncio.run(scenario())
    stats = runner.session.stats
    assert injected["malformed"] >= 5
    assert sum(stats.invalid.values()) == injected["malformed"]
    assert injected["connections"] == 1  # no reconnect: the run never fell over
    assert runner.session.books["BTC-USD"].ready
    assert sum(summary["invalid"].values()) == injected["malformed"]  # the run's summary came
