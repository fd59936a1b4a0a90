"""The HTTP side port: Prometheus metrics, health probes and a live dashboard, read-only."""
