"""O2C_LOG_FORMAT=json: one object per line, the order's id and run id lifted from the
Temporal SDK's logger context (`tests/integration/test_dev_observability.py` reads the lines
of a whole `o2c dev`)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from o2c_service.observability.logs import JsonFormatter, OrderContext
from o2c_workflows.credit_refund import WORKFLOW_NAME as REFUND
from o2c_workflows.order.base import WORKFLOW_NAME as ORDER

RUN_ID = "0192c1d2-7e4f-7a10-9b2c-3d4e5f607182"


@pytest.fixture
def lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(OrderContext())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("o2c.test-json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)


def written(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_from_an_activity_of_an_order_carries_the_order_its_run_and_the_call(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = lines
    activity = {"activity_id": "3", "activity_type": "billing.open_balance", "attempt": 2,
                "namespace": "default", "task_queue": "o2c-orders.billing",
                "workflow_id": "webshop:SO-1", "workflow_run_id": RUN_ID,
                "workflow_type": ORDER}  # fmt: skip
    logger.info(
        "business outcome %s", "credit_limit_exceeded", extra={"temporal_activity": activity}
    )
    [line] = written(out)
    assert {key: line[key] for key in ("level", "logger", "message")} == {
        "level": "INFO",
        "logger": "o2c.test-json",
        "message": "business outcome credit_limit_exceeded",
    }
    assert line["time"].endswith("+00:00")
    assert line["order_id"] == line["workflow_id"] == "webshop:SO-1"
    assert line["run_id"] == RUN_ID
    assert (line["activity_type"], line["attempt"]) == ("billing.open_balance", 2)


@pytest.mark.parametrize(("workflow_type", "order_id"), [(ORDER, "webshop:SO-2"), (REFUND, None)])
def test_a_line_from_a_workflow_names_the_order_only_when_it_is_an_order(
    lines: tuple[logging.Logger, io.StringIO], workflow_type: str, order_id: str | None
) -> None:
    logger, out = lines
    workflow_id = "webshop:SO-2" if workflow_type == ORDER else "refund:R-1"
    details = {"attempt": 1, "namespace": "default", "run_id": RUN_ID, "task_queue": "o2c-orders",
               "workflow_id": workflow_id, "workflow_type": workflow_type}  # fmt: skip
    logger.info("status moved", extra={"temporal_workflow": details})
    [line] = written(out)
    assert line.get("order_id") == order_id
    assert (line["workflow_id"], line["run_id"], line["workflow_type"]) == (
        workflow_id,
        RUN_ID,
        workflow_type,
    )


def test_a_line_about_no_order_has_no_order_fields_and_an_error_keeps_its_traceback(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = lines
    try:
        raise RuntimeError("database is locked")
    except RuntimeError:
        logger.exception("worker polling task queue %s", "o2c-orders")
    [line] = written(out)
    assert {"order_id", "workflow_id", "run_id"}.isdisjoint(line)
    assert line["level"] == "ERROR"
    assert "RuntimeError: database is locked" in line["exception"]


def test_an_access_line_carries_the_method_path_and_status(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    _, out = lines
    access = logging.getLogger("uvicorn.access")
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    access.addHandler(handler)
    level, access.level = access.level, logging.INFO
    try:
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/orders", "1.1", 200)
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    [line] = written(out)
    assert (line["method"], line["path"], line["status"]) == ("GET", "/orders", 200)
    assert line["message"] == '127.0.0.1:5000 - "GET /orders HTTP/1.1" 200'
