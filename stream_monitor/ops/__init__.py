"""Operations: Prometheus metrics, the health/readiness HTTP server and log setup (imports only the core)."""
