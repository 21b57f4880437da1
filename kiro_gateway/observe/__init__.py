"""Observability: the request log, stats and Prometheus metrics."""
