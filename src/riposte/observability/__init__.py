"""What an operator sees: one log line per request, Prometheus metrics and OpenTelemetry traces."""
