"""The Temporal SDK's runtime of a process: where its metrics go and how its core logs.

A worker process given O2C_METRICS_PORT serves the SDK's metrics (`temporal_*`: workflow
tasks, activities, polls, slots, requests) and those its activities record through
`activity.metric_meter()` (`o2c_dunning_notices_sent`) for Prometheus on that port. With
JSON logs, the SDK core's own lines (written by Rust, to stderr) go through Python's
logging instead, as JSON like every other line.
"""

from __future__ import annotations

import logging

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
)

from o2c_service.settings import Settings

CORE_LOGGER = "temporalio.core"


class MetricsPortUnavailable(RuntimeError):
    """O2C_METRICS_PORT cannot be listened on (another process holds it, say)."""


def temporal_runtime(settings: Settings, *, serve_metrics: bool) -> Runtime | None:
    """A runtime for the clients (and their workers) of one process part; None: the SDK's
    default serves, as it needs neither. `serve_metrics`: a worker's, on O2C_METRICS_PORT
    when set. Each runtime has a thread pool of its own: make one per worker process."""
    address = settings.metrics_address() if serve_metrics else None
    if address is None and settings.log_format != "json":
        return None
    logging_config = LoggingConfig.default
    if settings.log_format == "json":
        logging_config = LoggingConfig(
            filter=LoggingConfig.default.filter,
            forwarding=LogForwardingConfig(logger=logging.getLogger(CORE_LOGGER)),
        )
    try:
        return Runtime(
            telemetry=TelemetryConfig(
                logging=logging_config,
                metrics=PrometheusConfig(bind_address=address) if address is not None else None,
            )
        )
    except ValueError as error:  # what the SDK raises when the exporter cannot listen
        raise MetricsPortUnavailable(
            f"the worker's metrics cannot be served on {address} (O2C_METRICS_HOST, "
            f"O2C_METRICS_PORT): {error}; each worker process on a host needs a port of its own"
        ) from error
