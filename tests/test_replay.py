"""Recorded order histories replay on the current workflow code.

A change to `OrderWorkflow` that would break orders already running (a
reordered activity, a new timer, a removed upsert) fails here before it ships.
The corpus is recorded by `python -m tests.record_histories`.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from o2c_workflows.credit_refund import CreditRefundWorkflow
from o2c_workflows.order.workflow import OrderWorkflow

HISTORIES = {
    path.stem: path.read_text()
    for path in sorted((Path(__file__).parent / "histories").glob("*.json"))
}


def recorded(name: str) -> WorkflowHistory:
    """The history under its original workflow id, which an order checks is its order id."""
    text = HISTORIES[name]
    started = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]
    argument = json.loads(base64.b64decode(started["input"]["payloads"][0]["data"]))
    order = argument.get("order")
    workflow_id = f"{order['source_system']}:{order['source_order_id']}" if order else name
    return WorkflowHistory.from_json(workflow_id, text)


def test_the_corpus_is_there() -> None:
    assert set(HISTORIES) >= {"happy", "partial-late", "held-cancelled"}


@pytest.mark.parametrize("name", sorted(HISTORIES))
async def test_a_recorded_order_replays_without_nondeterminism(name: str) -> None:
    replayer = Replayer(
        workflows=[OrderWorkflow, CreditRefundWorkflow], data_converter=pydantic_data_converter
    )
    result = await replayer.replay_workflow(recorded(name), raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
