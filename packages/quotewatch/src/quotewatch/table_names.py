"""The names of quotewatch's Iceberg tables, shared by the pipeline (which produces their rows),
storage (which writes them) and the command line, without importing either."""

TABLE_NAMES: tuple[str, ...] = ("raw_orderbook", "raw_trades", "features", "predictions")
