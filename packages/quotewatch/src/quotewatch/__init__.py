"""quotewatch: Coinbase market data, order books, a price-move model, Iceberg storage."""

__version__ = "0.1.0"
