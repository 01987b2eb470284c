"""The per-message pipeline: book -> features -> predict -> label -> train -> storage and state."""
