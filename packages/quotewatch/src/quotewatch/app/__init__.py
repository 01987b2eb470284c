"""The composition root: `runner.Runner` builds the feed session, pipeline, storage writer,
dashboard (or the bare `metrics_server`) and metrics pusher for one run, and owns the process
around them (`loop_lag`, the event-loop probe; `process_tuning`, GIL and garbage-collector
settings; `summary`, the run summary)."""
