"""Recorded histories replay on the current workflow code.

A change to `OrderWorkflow` or `CreditRefundWorkflow` that would break
workflows already running (a reordered activity, a new timer, a removed upsert)
fails here before it ships. Every file in tests/histories (and the histories
recorded on earlier code, in its subfolders) is replayed with the workflow class
its history names; the corpus is recorded by
`python -m tests.support.record_histories` (see its SCENARIOS).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from o2c_service.temporal import workflow_runner
from o2c_workflows import credit_refund
from o2c_workflows.credit_refund import CreditRefundWorkflow
from o2c_workflows.order.base import WORKFLOW_NAME as ORDER_WORKFLOW
from o2c_workflows.order.workflow import OrderWorkflow
from tests.support.codec import TEST_CONVERTER
from tests.support.record_histories import SCENARIOS

HISTORIES = Path(__file__).parents[1] / "histories"
FILES = sorted(HISTORIES.glob("*.json"))
EARLIER = sorted(HISTORIES.glob("*/*.json"))
"""The same scenarios as recorded on earlier code, a folder per change of the command
sequence (`earlier-code`: before idempotency keys were scoped per execution;
`before-publish-per-wait`: before search attributes were published once per wait):
orders begun then must replay (and go on) on the code of today."""

WORKFLOWS: dict[str, type] = {
    ORDER_WORKFLOW: OrderWorkflow,
    credit_refund.WORKFLOW_NAME: CreditRefundWorkflow,
}
"""The workflow class for each workflow type a history may start with."""


def load(path: Path) -> WorkflowHistory:
    """The history under its original workflow id, which an order checks is its order id."""
    text = path.read_text()
    started = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]
    argument = json.loads(base64.b64decode(started["input"]["payloads"][0]["data"]))
    order = argument.get("order")
    workflow_id = f"{order['source_system']}:{order['source_order_id']}" if order else path.stem
    return WorkflowHistory.from_json(workflow_id, text)


def workflow_type(history: WorkflowHistory) -> str:
    first = history.events[0]
    assert first.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    return first.workflow_execution_started_event_attributes.workflow_type.name


def test_the_corpus_holds_every_scenario() -> None:
    expected = {stem for scenario in SCENARIOS for stem in scenario.files}
    present = {path.stem for path in FILES}
    assert len(FILES) >= len(expected)
    assert expected <= present, f"not recorded: {sorted(expected - present)}"


def test_the_corpus_covers_both_workflows() -> None:
    assert {workflow_type(load(path)) for path in FILES} == set(WORKFLOWS)


@pytest.mark.parametrize(
    "path", FILES + EARLIER, ids=[str(path.relative_to(HISTORIES)) for path in FILES + EARLIER]
)
async def test_a_recorded_history_replays_without_nondeterminism(path: Path) -> None:
    history = load(path)
    workflow = WORKFLOWS[workflow_type(history)]
    # The SDK's strict sandbox, whatever the worker runs with: it re-imports the workflow's
    # modules for each replay and restricts what they call, so a non-deterministic
    # change fails here.
    replayer = Replayer(
        workflows=[workflow],
        data_converter=TEST_CONVERTER,
        workflow_runner=workflow_runner("strict"),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
