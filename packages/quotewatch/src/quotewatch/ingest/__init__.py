"""From the wire to typed events: the live feed client and its subscriptions, parsing of both
Coinbase feeds, the `FeedSession` (order books, gap detection, consumers), recording and replay
of frames, and the feed's part of the run summary."""
