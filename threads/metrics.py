"""Prometheus metrics, served at /metrics."""

from prometheus_client import Counter, Gauge, Histogram

TURNS = Counter("threadline_turns_total", "Turns answered")
TURN_ERRORS = Counter("threadline_turn_errors_total", "Turns that ended in an error", ["code"])
TURN_SECONDS = Histogram(
    "threadline_turn_seconds",
    "Time from query to done",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ACTIVE_SOCKETS = Gauge("threadline_active_sockets", "Open WebSocket connections")
