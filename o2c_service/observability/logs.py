"""Log lines as text for people, or as JSON for a log pipeline (O2C_LOG_FORMAT).

A JSON line is one object: `time`, `level`, `logger`, `message`, and, when the line is about
an order, `order_id`; lines from the worker also carry `workflow_id` and `run_id` (and an
activity's `activity_type` and `attempt`). The worker's come from the Temporal SDK's logger
context (`workflow.logger`, `activity.logger` put `temporal_workflow` / `temporal_activity`
on the record) or, for any other logger called inside an activity (an HTTP client's, say),
from the running activity itself; the API's from the request: the order in its path, or
the order a `POST /orders` creates (`note_order`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio import activity, workflow

from o2c_workflows.order.base import WORKFLOW_NAME

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ORDER_FIELDS = ("order_id", "workflow_id", "run_id", "workflow_type", "activity_type", "attempt")
"""What `OrderContext` puts on a record, and the JSON line carries when set."""


@dataclass
class RequestContext:
    """The order an API request is about, once known; one object per request, so what a
    route notes is seen by every log line of the request, in whatever task it is written."""

    order_id: str | None = None


_REQUEST: ContextVar[RequestContext | None] = ContextVar("o2c_request_log_context", default=None)
_ORDER_PATH = re.compile(r"^/orders/(?P<order_id>(?!bulk/)[^/]+)")


def note_order(order_id: str) -> None:
    """Say that the API request being handled is about `order_id` (no request: nothing)."""
    context = _REQUEST.get()
    if context is not None:
        context.order_id = order_id


class OrderLogContext:
    """ASGI middleware: every line logged while a request is handled (the access log's
    too) carries the order in its path, `/orders/<order_id>/...`, or the one it notes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        about = _ORDER_PATH.match(scope.get("path", ""))
        token = _REQUEST.set(RequestContext(about["order_id"] if about else None))
        try:
            await self.app(scope, receive, send)
        finally:
            _REQUEST.reset(token)


def _order_of(workflow_id: Any, workflow_type: Any) -> str | None:
    """The order a workflow is: an order's workflow id is its order id (a refund's is not)."""
    return str(workflow_id) if workflow_type == WORKFLOW_NAME and workflow_id else None


def order_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The order, workflow run and activity a record is about, as far as can be told."""
    in_workflow: Mapping[str, Any] | None = getattr(record, "temporal_workflow", None)
    in_activity: Mapping[str, Any] | None = getattr(record, "temporal_activity", None)
    if in_activity is None and activity.in_activity():
        # A logger other than `activity.logger`, called by an activity (an adapter's).
        info = activity.info()
        in_activity = {
            "workflow_id": info.workflow_id,
            "workflow_run_id": info.workflow_run_id,
            "workflow_type": info.workflow_type,
            "activity_type": info.activity_type,
            "attempt": info.attempt,
        }
    details = in_activity if in_activity is not None else in_workflow
    if details is not None:
        workflow_id, workflow_type = details.get("workflow_id"), details.get("workflow_type")
        return {
            "order_id": _order_of(workflow_id, workflow_type),
            "workflow_id": workflow_id,
            # An activity names its workflow's run `workflow_run_id`, a workflow `run_id`.
            "run_id": details.get("workflow_run_id", details.get("run_id")),
            "workflow_type": workflow_type,
            "activity_type": details.get("activity_type"),
            # A workflow's `attempt` is its task's, not the order's: activities' only.
            "attempt": details.get("attempt") if in_activity is not None else None,
        }
    request = _REQUEST.get()
    if request is not None and request.order_id is not None:
        return {"order_id": request.order_id, "workflow_id": request.order_id}
    return {}


class OrderContext(logging.Filter):
    """Puts `order_fields` on every record that passes the handler (as attributes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in order_fields(record).items():
            if value is not None:
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `OrderContext` beside it supplies the order's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ORDER_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        access = record.args if record.name == "uvicorn.access" else None
        if isinstance(access, tuple) and len(access) == 5:
            _, method, path, _, status = access  # client, method, path, HTTP version, status
            line.update(method=method, path=path, status=status)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


_configured: LogFormat | None = None


def configure_logging(log_format: LogFormat, level: int = logging.INFO) -> None:
    """Log to stderr at `level`, as text or JSON, for a whole process (its CLI command).

    For JSON, the SDK's loggers stop appending the workflow's or activity's details to the
    message: the line carries them as fields instead.
    """
    global _configured
    handler = logging.StreamHandler()
    handler.addFilter(OrderContext())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
        activity.logger.activity_info_on_message = False
        workflow.logger.workflow_info_on_message = False
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.captureWarnings(True)  # a Python warning is a log line too, not stray text
    _configured = log_format


def uvicorn_log_config() -> dict[str, Any] | None:
    """What a uvicorn server of this process logs with: uvicorn's own console format, or,
    with JSON logs, none of its own, so its lines (the access log too) reach the JSON
    handler."""
    if _configured == "json":
        return None
    from uvicorn.config import LOGGING_CONFIG

    return LOGGING_CONFIG
