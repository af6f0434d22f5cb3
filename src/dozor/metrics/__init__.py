"""The Prometheus ``/metrics`` endpoint: monitor states and latencies, check counts and
durations per kind, queue depths and scheduler lag (``collector``), served and guarded by
an optional bearer token (``web``)."""
