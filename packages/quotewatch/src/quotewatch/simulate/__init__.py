"""The local exchange behind `quotewatch simulate`: a deterministic simulated market served over
the Coinbase Exchange and Advanced Trade websocket protocols on loopback, with fault injection
whose every fault is counted exactly."""

from quotewatch.simulate.faults import (
    ConnectionRecord,
    FaultConfigError,
    Faults,
    Injected,
)
from quotewatch.simulate.market import SPECS, UnknownProductError
from quotewatch.simulate.server import ADVANCED_PATH, EXCHANGE_PATH, LocalExchange

__all__ = [
    "ADVANCED_PATH",
    "EXCHANGE_PATH",
    "SPECS",
    "ConnectionRecord",
    "FaultConfigError",
    "Faults",
    "Injected",
    "LocalExchange",
    "UnknownProductError",
]
