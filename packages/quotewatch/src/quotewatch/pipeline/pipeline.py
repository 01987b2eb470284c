"""Per-message processing: book -> features -> predict -> label -> train -> storage rows and a
new state snapshot.

`Pipeline.process` is a `FeedSession` consumer: the session has already parsed the frame and
applied the event to its order book, and hands the pipeline the event with that book. It handles
one event synchronously and never does I/O: storage rows go to the row sink's queue (which never
blocks the caller) and the state is published by swapping one reference. For a book update of
product P:

1. read the top of the book the session handed over;
2. features from the top of the book and P's trade buffer (stage `features`);
3. the labeler queues P's previous sample, then labels every waiting sample whose horizon this
   update's exchange time reached (stage `labeler`);
4. the classifier scores those labels' predictions (prequential: before it trains on them),
   learns from them (one SGD step per sample) and predicts from this
   update's features (stage `classifier`); the prediction rides with this update's sample,
   which the labeler queues on P's next update;
5. rows for `raw_orderbook` and `features`, and a `predictions` row for every predicted sample
   that was labelled or evicted (stage `writer`);
6. a new `ProductState` is published and returned; the message's latency (frame receipt, which
   the state carries as `received_at`, to here) is recorded from it.

Counters (predictions per class, samples trained on per label, labeler evictions, the
order-book update rate) are kept as plain integers and reported in increments by
`report_counts` every 0.25 s and at `close`: a decorated call per message per counter cost more
than the pipeline's own arithmetic. Rows
produced per table are read at collect time (`rows_produced`), so completeness compares them
with storage's rows at one moment, with no reporting lag.

A trade goes to P's trade buffer and `raw_trades`; after a snapshot the same steps as an update
run (with the receive time when the snapshot has no exchange time). Events for products not
configured are ignored. Instrumentation is applied from outside by decorators.

Latency runs from the frame's receive time (`received_us`) to the state swap, for every event
that published a state. In a replay that time is the recorded one, so a pipeline made with
`replay=True` takes the time of the call as the receive time instead.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

import numpy as np
from qw_metrics import counted, recorded, seconds_since, timed

from quotewatch.book import OrderBook
from quotewatch.events import BookSnapshot, BookUpdate, Event, Level, Trade
from quotewatch.metrics import (
    LABELER_EVICTIONS,
    MESSAGE_LATENCY,
    ML_PREDICTIONS,
    ML_SAMPLES,
    ORDERBOOK_RATE,
    ROW_ACCOUNTS,
)
from quotewatch.pipeline.candles import CandleBuilder
from quotewatch.pipeline.classifier import OnlineClassifier
from quotewatch.pipeline.features import FeatureConfig, FeatureExtractor, FeatureVector
from quotewatch.pipeline.labeler import Labeler, LabelResult, Sample
from quotewatch.pipeline.trades import TradeBuffer
from quotewatch.rows import BOOK_DEPTH, FEATURE_NAMES, TABLE_NAMES, RowSink
from quotewatch.state import FeedStatus, ProductState, StateStore, TradeView

# How often the feed status in the snapshot is refreshed; per message would cost for nothing.
_FEED_STATUS_EVERY = 0.25


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Model and display parameters of the pipeline."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    label_horizon_us: int = 500_000
    label_threshold: float = 0.0001  # 0.01%
    labeler_capacity: int = 1000
    trade_capacity: int = 1000
    warmup_per_class: int = 8
    score_window: int = 1000  # labelled samples the prequential scores cover
    candle_interval_us: int = 1_000_000
    candles_kept: int = 120
    trades_shown: int = 50


@dataclass(slots=True)
class PipelineStats:
    """Running counts, for the run summary and the counter reports."""

    messages: int = 0
    book_updates: int = 0
    trades: int = 0
    samples: int = 0
    labels: int = 0
    predictions: int = 0
    predicted_ones: int = 0
    evictions: int = 0
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLE_NAMES, 0))


@dataclass(frozen=True, slots=True)
class CountsReport:
    """Increments of the pipeline's counters since the previous report."""

    book_updates: int
    evictions: int
    predicted_zeros: int
    predicted_ones: int
    trained_zeros: int = 0  # labelled samples the models learned from, by label
    trained_ones: int = 0


class _FloatCache(dict[Decimal, float]):
    """Decimal -> float, memoised: book levels repeat across updates, float(Decimal) is slow."""

    def __missing__(self, key: Decimal) -> float:
        if len(self) >= 1 << 16:
            self.clear()
        value = self[key] = float(key)
        return value


class ProductPipeline:
    """The per-product working state: buffers, model and display builders."""

    __slots__ = (
        "candles",
        "classifier",
        "extractor",
        "first_prediction_s",
        "labeler",
        "pending",
        "predictions",
        "product",
        "state",
        "trades",
    )

    def __init__(self, product: str, config: PipelineConfig) -> None:
        self.product = product
        self.predictions = PredictionSample()
        self.first_prediction_s: float | None = None  # wall seconds from the pipeline's start
        self.trades = TradeBuffer(config.trade_capacity, config.features.trade_window_us)
        self.extractor = FeatureExtractor(self.trades, config.features)
        self.labeler = Labeler(
            config.label_horizon_us, config.label_threshold, config.labeler_capacity
        )
        self.classifier = OnlineClassifier(
            FEATURE_NAMES, warmup_per_class=config.warmup_per_class,
            score_window=config.score_window, product=product,
        )  # fmt: skip
        self.candles = CandleBuilder(config.candle_interval_us, config.candles_kept)
        self.pending: Sample | None = None  # this product's last sample, queued on its next update
        self.state: ProductState | None = None


class PredictionSample:
    """A bounded, evenly spaced sample of the predictions made, for their percentiles: every
    `stride`-th is kept, and the stride doubles (halving what is kept) when it fills."""

    __slots__ = ("_count", "_kept", "_stride")

    CAPACITY = 20_000

    def __init__(self) -> None:
        self._kept = array("d")
        self._count = 0
        self._stride = 1

    def add(self, probability: float) -> None:
        """Record one prediction."""
        if self._count % self._stride == 0:
            if len(self._kept) >= self.CAPACITY:
                self._kept = self._kept[::2]
                self._stride *= 2
            self._kept.append(probability)
        self._count += 1

    def quantile(self, q: float) -> float | None:
        """The q-quantile of the predictions, or None before any."""
        if not self._kept:
            return None
        return float(np.quantile(np.frombuffer(self._kept, dtype=np.float64), q))


def _latency(state: ProductState | None) -> float | None:
    """Seconds from the receipt of the frame behind `state` to now."""
    return None if state is None else seconds_since(state.received_at)


@ROW_ACCOUNTS.source
class Pipeline:
    """Turns feed events into features, predictions, storage rows and state snapshots."""

    def __init__(
        self,
        products: Iterable[str] | None,
        state: StateStore,
        sink: RowSink | None = None,
        config: PipelineConfig | None = None,
        *,
        source: str = "exchange",
        replay: bool = False,
    ) -> None:
        self.config = config = config or PipelineConfig()
        # None follows every product the feed carries (a replay); else only those named.
        self._any_product = products is None
        self.products = {p: ProductPipeline(p, config) for p in products or ()}
        if not self.products and not self._any_product:
            raise ValueError("the pipeline needs at least one product, e.g. BTC-USD")
        self.state = state
        self.sink = sink
        self.replay = replay
        self.stats = PipelineStats()
        self._reported = PipelineStats()
        self._reported_trained = (0, 0)
        self._horizon_s = config.label_horizon_us / 1e6
        self._levels = max(BOOK_DEPTH, config.features.levels_needed)
        self._floats = _FloatCache()
        self._feed = FeedStatus(source=source, connected=False)
        self._feed_at = 0.0
        self._started = time.monotonic()
        state.update_feed(source=source)

    @recorded(MESSAGE_LATENCY, value=_latency)
    def process(self, event: Event, book: OrderBook | None) -> ProductState | None:
        """Handle one event with the book it updated (a `FeedSession` consumer); return the
        state it published, or None when no state changed."""
        received = time.time() if self.replay else event.received_us * 1e-6
        self.stats.messages += 1
        if isinstance(event, BookUpdate):
            prod = self._product(event.product)
            if prod is None or book is None:
                return None
            self.stats.book_updates += 1
            return self._on_book(prod, book, event.time_us, event.received_us, received)
        if isinstance(event, Trade):
            prod = self._product(event.product)
            if prod is None:
                return None
            # The session passes each trade id once, `last_match` included when it is new.
            return self._on_trade(prod, event, received)
        if isinstance(event, BookSnapshot):
            prod = self._product(event.product)
            if prod is None or book is None:
                return None
            time_us = event.time_us or event.received_us
            return self._on_book(prod, book, time_us, event.received_us, received)
        return None

    def _product(self, product: str) -> ProductPipeline | None:
        prod = self.products.get(product)
        if prod is None and self._any_product:
            prod = self.products[product] = ProductPipeline(product, self.config)
        return prod

    def close(self) -> CountsReport:
        """Bring each model's state (and the published state) up to its last label, write every
        predicted sample still waiting for its label (with a null label) and report the
        counters; call once, after the last event."""
        for prod in self.products.values():
            prod.classifier.refresh()
            if prod.state is not None:
                self.state.update_product(prod.state._replace(model=prod.classifier.state()))
            waiting = prod.labeler.drain()
            if prod.pending is not None:
                waiting.append(prod.pending)
                prod.pending = None
            if waiting:
                self._write_predictions(prod, LabelResult((), tuple(waiting)), 0)
        return self.report_counts()

    @counted(ORDERBOOK_RATE, amount=lambda r: r.book_updates)
    @counted(LABELER_EVICTIONS, amount=lambda r: r.evictions)
    @counted(ML_PREDICTIONS, prediction="0", amount=lambda r: r.predicted_zeros)
    @counted(ML_PREDICTIONS, prediction="1", amount=lambda r: r.predicted_ones)
    @counted(ML_SAMPLES, label="0", amount=lambda r: r.trained_zeros)
    @counted(ML_SAMPLES, label="1", amount=lambda r: r.trained_ones)
    def report_counts(self) -> CountsReport:
        """The counters' increments since the last report (called every 0.25 s and by close)."""
        stats, last = self.stats, self._reported
        ones = stats.predicted_ones - last.predicted_ones
        seen = [prod.classifier.labels_seen for prod in self.products.values()]
        trained = (sum(s[0] for s in seen), sum(s[1] for s in seen))
        report = CountsReport(
            book_updates=stats.book_updates - last.book_updates,
            evictions=stats.evictions - last.evictions,
            predicted_zeros=stats.predictions - last.predictions - ones,
            predicted_ones=ones,
            trained_zeros=trained[0] - self._reported_trained[0],
            trained_ones=trained[1] - self._reported_trained[1],
        )
        self._reported = replace(stats)
        self._reported_trained = trained
        return report

    def rows_produced(self) -> Mapping[str, int]:
        """Rows handed to storage per table since the start: a mapping this pipeline updates
        in place (safe to read from any thread)."""
        return self.stats.rows

    def _on_book(
        self,
        prod: ProductPipeline,
        book: OrderBook,
        time_us: int,
        received_us: int,
        received: float,
    ) -> ProductState | None:
        bids, asks = book.top(self._levels)
        if not bids or not asks:
            if self.sink is not None:
                self._write_book(prod, time_us, received_us, bids, asks)
            return None
        floats = self._floats
        bid = floats[bids[0][0]]
        ask = floats[asks[0][0]]
        mid = (bid + ask) * 0.5
        features = prod.extractor.compute(
            time_us, bid, ask, [floats[s] for _, s in bids], [floats[s] for _, s in asks]
        )
        result = prod.labeler.update(time_us, mid, prod.pending)
        probability = self._classify(prod, result, features)
        prod.pending = Sample(time_us, mid, features, probability, received_us)
        stats = self.stats
        stats.samples += 1
        if result.labelled:
            stats.labels += len(result.labelled)
        if result.dropped:
            stats.evictions += len(result.dropped)
        if probability is not None:
            stats.predictions += 1
            if probability >= 0.5:
                stats.predicted_ones += 1
            prod.predictions.add(probability)
            if prod.first_prediction_s is None:
                prod.first_prediction_s = time.monotonic() - self._started
        if self.sink is not None:
            self._write(
                prod, time_us=time_us, received_us=received_us, bids=bids, asks=asks, mid=mid,
                features=features, result=result,
            )  # fmt: skip
        prod.candles.add(time_us, mid)
        # Positional: this runs per message and keyword construction costs more.
        return self._publish(
            ProductState(
                prod.product,
                time.time(),
                time_us,
                bid,
                ask,
                mid,
                ask - bid,
                FeatureVector(features),
                probability,
                prod.classifier.state(),
                prod.candles.candles(),
                prod.trades.recent(self.config.trades_shown),
                received,
            )
        )

    @timed(stage="classifier")
    def _classify(
        self, prod: ProductPipeline, result: LabelResult, features: tuple[float, ...]
    ) -> float | None:
        if result.labelled:
            prod.classifier.learn(result.labelled)
        return prod.classifier.predict(features)

    def _on_trade(
        self, prod: ProductPipeline, trade: Trade, received: float
    ) -> ProductState | None:
        view = TradeView(trade.time_us, float(trade.price), float(trade.size), trade.taker_side)
        prod.trades.add(view)
        self.stats.trades += 1
        if self.sink is not None:
            self._write_trade(trade)
        if prod.state is None:
            return None
        return self._publish(
            prod.state._replace(
                updated_at=time.time(),
                trades=prod.trades.recent(self.config.trades_shown),
                received_at=received,
            )
        )

    def _publish(self, state: ProductState) -> ProductState:
        self.products[state.product].state = state
        now = state.updated_at
        if now - self._feed_at >= _FEED_STATUS_EVERY:
            self._feed_at = now
            self._feed = replace(
                self._feed, connected=True, messages=self.stats.messages, last_message_at=now
            )
            self.state.update_product(state, self._feed)
            self.report_counts()
        else:
            self.state.update_product(state)
        return state

    # --- storage: every row is counted in stats.rows, read at collect time as rows expected --

    @timed(stage="writer")
    def _write(
        self,
        prod: ProductPipeline,
        *,
        time_us: int,
        received_us: int,
        bids: list[Level],
        asks: list[Level],
        mid: float,
        features: tuple[float, ...],
        result: LabelResult,
    ) -> None:
        sink = self.sink
        assert sink is not None
        product = prod.product
        # The buffer keeps the first BOOK_DEPTH levels of longer lists: no copies here.
        sink.submit_orderbook(product, time_us, received_us, bids, asks)
        sink.submit_feature_values(product, time_us, received_us, (mid, *features))
        rows = self.stats.rows
        rows["raw_orderbook"] += 1
        rows["features"] += 1
        if result.labelled or result.dropped:
            self._write_predictions(prod, result, time_us)

    def _write_predictions(self, prod: ProductPipeline, result: LabelResult, time_us: int) -> None:
        sink = self.sink
        if sink is None:
            return
        product, horizon = prod.product, self._horizon_s
        written = 0
        for item in result.labelled:
            s = item.sample
            if s.probability is not None:
                sink.submit_prediction(
                    product, s.time_us, s.received_us, horizon_seconds=horizon,
                    probability=s.probability, predicted_class=int(s.probability >= 0.5),
                    label=item.label, labelled_us=time_us,
                )  # fmt: skip
                written += 1
        for s in result.dropped:
            if s.probability is not None:
                sink.submit_prediction(
                    product, s.time_us, s.received_us, horizon_seconds=horizon,
                    probability=s.probability, predicted_class=int(s.probability >= 0.5),
                    label=None, labelled_us=None,
                )  # fmt: skip
                written += 1
        self.stats.rows["predictions"] += written

    @timed(stage="writer")
    def _write_book(
        self,
        prod: ProductPipeline,
        time_us: int,
        received_us: int,
        bids: list[Level],
        asks: list[Level],
    ) -> None:
        assert self.sink is not None
        self.sink.submit_orderbook(prod.product, time_us, received_us, bids, asks)
        self.stats.rows["raw_orderbook"] += 1

    def backfilled(self, trades: Sequence[Trade]) -> None:
        """Store trades the REST API recovered for gaps. They are history by now, so they go
        to `raw_trades` only, not into the trade buffer or the features."""
        if self.sink is not None and trades:
            for trade in trades:
                self._write_trade(trade)

    @timed(stage="writer")
    def _write_trade(self, trade: Trade) -> None:
        assert self.sink is not None
        self.sink.submit_trade(trade)
        self.stats.rows["raw_trades"] += 1
