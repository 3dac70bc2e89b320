"""What a process tells its operators: metrics, traces and logs (docs/operations.md).

- `runtime.py`: the Temporal SDK's runtime of a worker process, serving the SDK's metrics
  (and the activities' own, such as dunning notices sent) for Prometheus.
- `api_metrics.py`, `requests.py`, `order_figures.py`, `business.py`: the API's `/metrics`:
  its requests, orders by status and holds by reason from Temporal's visibility, events
  rejected, reconciliation mismatches.
- `tracing.py`: OpenTelemetry traces across the API, Temporal and the worker, on when the
  standard `OTEL_*` variables ask for them.
- `logs.py`: text or JSON log lines, those about an order carrying its id and run id.
"""
