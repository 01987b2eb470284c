"""The pipeline's shared state: immutable snapshots swapped in atomically.

The pipeline (one writer, on the feed's event loop) builds a new `Snapshot` after every message
and publishes it with `StateStore.publish`, a single reference assignment, which is atomic under
the GIL. Readers (the dashboard's threads) call `StateStore.current()` and get a snapshot that
never changes under them: every field is frozen, sequences are tuples and mappings are read-only
(proxies, or the pipeline's `FeatureVector`). Nothing here takes a lock, so a slow reader can
never stall the feed.

The per-message types (`ProductState`, `Snapshot`, `Candle`, `TradeView`) are NamedTuples, which
are built in a quarter of the time of a frozen dataclass; the rarely rebuilt ones stay frozen
dataclasses.

Prices in the snapshot are floats: it is a view for display. Exact prices (Decimal) live in the
order book and in storage.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import NamedTuple

from quotewatch.metrics import STATE_AGE

_EMPTY: Mapping[str, float] = MappingProxyType({})


def frozen_mapping(values: Mapping[str, float] | None = None) -> Mapping[str, float]:
    """A read-only copy of `values` (an empty read-only mapping for None)."""
    return MappingProxyType(dict(values)) if values else _EMPTY


class Candle(NamedTuple):
    """OHLC of the mid price over one interval starting at `start_us` (exchange time)."""

    start_us: int
    open: float
    high: float
    low: float
    close: float


class TradeView(NamedTuple):
    """One trade as the dashboard shows it; `taker_side` is "buy" or "sell"."""

    time_us: int
    price: float
    size: float
    taker_side: str


class CalibrationBin(NamedTuple):
    """Predictions with probability in [low, high): their mean and the observed rate of 1."""

    low: float
    high: float
    predicted: float
    observed: float
    samples: int


@dataclass(frozen=True, slots=True)
class ModelScores:
    """Prequential scores over the last `samples` predicted-then-labelled samples, of the model
    and of the base-rate predictor (see `quotewatch.pipeline.evaluation`)."""

    samples: int
    positive_rate: float  # share of label 1 among them
    log_loss: float
    log_loss_base: float
    skill: float  # 1 - log_loss / log_loss_base
    brier: float
    brier_base: float
    auc: float | None  # None until both labels were seen
    auc_base: float | None
    accuracy: float  # at 0.5
    accuracy_base: float
    calibration: tuple[CalibrationBin, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelState:
    """What the online classifier knows right now."""

    ready: bool = False
    class_counts: tuple[int, int] = (0, 0)  # labelled samples seen: (label 0, label 1)
    warmup_target: int = 100  # samples of EACH class needed before predictions are made
    accuracy_recent: float | None = None  # over recent labelled samples predicted when ready
    weights: Mapping[str, float] = field(default_factory=lambda: _EMPTY)  # per feature, scaled
    trained: int = 0  # labelled samples trained on
    scores: ModelScores | None = None  # prequential scores; None until a prediction is labelled


class ProductState(NamedTuple):
    """The latest view of one product."""

    product: str
    updated_at: float  # wall clock (time.time()) when this state was built
    time_us: int | None  # exchange time of the last message applied
    best_bid: float | None
    best_ask: float | None
    mid: float | None
    spread: float | None
    features: Mapping[str, float]
    probability: float | None  # P(price moves beyond the threshold); None until the model is ready
    model: ModelState
    candles: tuple[Candle, ...] = ()  # oldest first; the last one may still be forming
    trades: tuple[TradeView, ...] = ()  # most recent last
    # Wall clock when the frame behind this state was received (in a replay, when it was replayed).
    received_at: float | None = None


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """How the market-data feed is doing."""

    source: str = "none"  # e.g. "exchange", "advanced", "local", "replay"
    connected: bool = False
    messages: int = 0  # messages processed by the pipeline
    last_message_at: float | None = None  # wall clock of the last processed message
    detail: str = ""  # human-readable status, e.g. the last reconnect reason


class Snapshot(NamedTuple):
    """Everything the dashboard shows, as of `created_at` (wall clock, seconds)."""

    created_at: float
    products: Mapping[str, ProductState]
    feed: FeedStatus

    @classmethod
    def empty(cls) -> Snapshot:
        """The snapshot before any data arrived."""
        return cls(created_at=time.time(), products=MappingProxyType({}), feed=FeedStatus())


@STATE_AGE.track
class StateStore:
    """Holds the current `Snapshot`; one writer publishes, any number of threads read."""

    __slots__ = ("__weakref__", "_current", "_products")

    def __init__(self) -> None:
        self._current = Snapshot.empty()
        self._products: dict[str, ProductState] = {}

    def current(self) -> Snapshot:
        """The latest published snapshot; it never changes after being returned."""
        return self._current

    def updated_at(self) -> float:
        """Wall-clock time of the last publish (of the store's creation before any)."""
        return self._current.created_at

    def publish(self, snapshot: Snapshot) -> None:
        """Swap in `snapshot` (one atomic reference assignment)."""
        self._products = dict(snapshot.products)
        self._current = snapshot

    def update_product(self, product: ProductState, feed: FeedStatus | None = None) -> Snapshot:
        """Publish a snapshot with `product` replaced (and `feed`, if given); return it."""
        products = self._products
        products[product.product] = product
        # The proxy wraps a fresh copy so readers holding an older snapshot keep their view.
        snapshot = Snapshot(
            created_at=product.updated_at,
            products=MappingProxyType(dict(products)),
            feed=self._current.feed if feed is None else feed,
        )
        self._current = snapshot
        return snapshot

    def update_feed(self, **changes: object) -> Snapshot:
        """Publish a snapshot whose feed status has `changes` applied; return it."""
        current = self._current
        snapshot = Snapshot(
            created_at=time.time(),
            products=current.products,
            feed=replace(current.feed, **changes),  # type: ignore[arg-type]
        )
        self._current = snapshot
        return snapshot
