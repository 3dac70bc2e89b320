"""The API's `GET /metrics`, in Prometheus's text format (docs/operations.md lists each).

One registry per app: the process-wide counters (requests, events rejected,
reconciliation, the Python process itself) and this app's order figures, read from
visibility when scraped.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
)

from o2c_service.observability.business import (
    EVENTS_REJECTED,
    RECONCILE_LAST_RUN,
    RECONCILE_MISMATCHES,
)
from o2c_service.observability.order_figures import OrderFigures
from o2c_service.observability.requests import REQUEST_SECONDS, REQUESTS, RequestMetrics
from o2c_service.reports.service import ReportService


def metrics_registry(figures: OrderFigures) -> CollectorRegistry:
    registry = CollectorRegistry()
    for collector in (
        PROCESS_COLLECTOR,
        PLATFORM_COLLECTOR,
        GC_COLLECTOR,
        REQUESTS,
        REQUEST_SECONDS,
        EVENTS_REJECTED,
        RECONCILE_MISMATCHES,
        RECONCILE_LAST_RUN,
        figures,
    ):
        registry.register(collector)
    return registry


def add_metrics(app: FastAPI, reports: Callable[[], ReportService]) -> None:
    """Count every request `app` answers, and serve `GET /metrics`; `reports`: the report
    service the order gauges are read with (asked at a scrape, once the API's orders are
    connected). Call it after the app's other middleware, so that the count is the
    outermost and sees every answer."""
    # Counters show their totals only, not a `_created` timestamp series beside each.
    disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus-client
    app.add_middleware(RequestMetrics)
    figures = OrderFigures(reports)
    registry = metrics_registry(figures)

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        """The API's metrics for Prometheus (a key of any role: docs/operations.md)."""
        await figures.refresh()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
