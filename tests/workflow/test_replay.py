"""Recorded histories replay on the current workflow code.

A change to `OrderWorkflow`, `CreditRefundWorkflow` or `ClosedOrderReturnWorkflow` that
would break workflows already running (a reordered activity, a new timer, a removed
upsert) fails here before it ships. Every file in tests/histories (and the histories
recorded on earlier code, in its subfolders) is replayed with the workflow class
its history names; the corpus is recorded, encrypted under the test key `replay-1`,
by `python -m tests.support.record_histories` (see its SCENARIOS).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer, WorkflowReplayResult

from o2c_service.codec.converter import data_converter
from o2c_service.codec.encryption import EncryptionCodec
from o2c_service.codec.keys import CodecKeys, UnknownCodecKey
from o2c_service.temporal import workflow_runner
from o2c_workflows import closed_return, credit_refund
from o2c_workflows.closed_return import ClosedOrderReturnWorkflow
from o2c_workflows.credit_refund import CreditRefundWorkflow
from o2c_workflows.order.base import WORKFLOW_NAME as ORDER_WORKFLOW
from o2c_workflows.order.workflow import OrderWorkflow
from tests.support.codec import REPLAY_KEYS, TEST_CONVERTER, TEST_KEYS
from tests.support.codec import test_key as fixed_key  # not collected as a test
from tests.support.payloads import history_payloads
from tests.support.record_histories import SCENARIOS

HISTORIES = Path(__file__).parents[1] / "histories"
FILES = sorted(HISTORIES.glob("*.json"))
EARLIER = sorted(HISTORIES.glob("*/*.json"))
"""The same scenarios as recorded on earlier code, a folder per change (`earlier-code`:
before idempotency keys were scoped per execution; `before-publish-per-wait`: before
search attributes were published once per wait; `before-codec`: before payloads were
encrypted, so every payload is plain): orders begun then must replay (and go on) on the
code of today."""

WORKFLOWS: dict[str, type] = {
    ORDER_WORKFLOW: OrderWorkflow,
    credit_refund.WORKFLOW_NAME: CreditRefundWorkflow,
    closed_return.WORKFLOW_NAME: ClosedOrderReturnWorkflow,
}
"""The workflow class for each workflow type a history may start with."""

ROTATED = CodecKeys((fixed_key("rotated-2"), *REPLAY_KEYS.keys))
"""The corpus key rotated out: another key current, `replay-1` kept to decrypt."""


def load(path: Path) -> WorkflowHistory:
    """The history under its original workflow id, which an order checks is its order id."""
    text = path.read_text()
    history = WorkflowHistory.from_json(path.stem, text)
    started = history.events[0].workflow_execution_started_event_attributes
    # Encrypted, or plain in the histories from before the codec (which it passes through).
    argument = json.loads(EncryptionCodec(TEST_KEYS).decrypt(started.input.payloads[0]).data)
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


def test_the_corpus_covers_every_workflow() -> None:
    assert {workflow_type(load(path)) for path in FILES} == set(WORKFLOWS)


async def replay(history: WorkflowHistory, converter: DataConverter) -> WorkflowReplayResult:
    # The SDK's strict sandbox, whatever the worker runs with: it re-imports the workflow's
    # modules for each replay and restricts what they call, so a non-deterministic
    # change fails here.
    replayer = Replayer(
        workflows=[WORKFLOWS[workflow_type(history)]],
        data_converter=converter,
        workflow_runner=workflow_runner("strict"),
    )
    return await replayer.replay_workflow(history, raise_on_replay_failure=False)


@pytest.mark.parametrize(
    "path", FILES + EARLIER, ids=[str(path.relative_to(HISTORIES)) for path in FILES + EARLIER]
)
async def test_a_recorded_history_replays_without_nondeterminism(path: Path) -> None:
    result = await replay(load(path), TEST_CONVERTER)
    assert result.replay_failure is None, result.replay_failure


async def test_histories_written_under_a_key_replay_and_decode_once_another_is_current() -> None:
    codec = EncryptionCodec(ROTATED)
    for path in FILES:
        history = load(path)
        result = await replay(history, data_converter(ROTATED))
        assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
        decoded = await codec.decode([item.payload for item in history_payloads(history)])
        assert all(payload.metadata["encoding"] != b"binary/encrypted" for payload in decoded)


async def test_without_the_key_a_history_was_written_under_the_error_names_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rotated out too early: the worker cannot replay the order, and says which key to add
    back; the codec server and CLI cannot decode it either."""
    dropped = CodecKeys((fixed_key("rotated-2"),))
    history = load(HISTORIES / "happy.json")
    with caplog.at_level(logging.ERROR, logger="temporalio"):
        result = await replay(history, data_converter(dropped))
    assert result.replay_failure is not None
    # The failure itself travels encrypted (its message is in its encoded attributes); the
    # worker's log says what went wrong.
    assert "UnknownCodecKey" in str(result.replay_failure)
    logged = [r.exc_info[1] for r in caplog.records if r.exc_info and r.exc_info[1]]
    unknown = [error for error in logged if isinstance(error, UnknownCodecKey)]
    assert unknown, [str(error) for error in logged]
    assert {error.key_id for error in unknown} == {"replay-1"}
    assert "encrypted with key 'replay-1'" in str(unknown[0])

    with pytest.raises(UnknownCodecKey, match="encrypted with key 'replay-1'"):
        await EncryptionCodec(dropped).decode([item.payload for item in history_payloads(history)])
