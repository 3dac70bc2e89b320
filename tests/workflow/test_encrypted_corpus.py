"""The recorded corpus is what Temporal stores of an order: every payload in it is
ciphertext under the corpus key, wherever it sits in the history.

The walk (`tests.support.payloads`) visits every field of every event, so a payload in
a place nobody thought of is checked too; what stays in clear by design (search
attributes, the SDK core's own marker bookkeeping) is named, and nothing else is.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from o2c_service.codec.encryption import KEY_ID_METADATA, EncryptionCodec, is_encrypted
from o2c_workflows.order.base import WORKFLOW_NAME as ORDER_WORKFLOW
from tests.support.codec import REPLAY_KEYS
from tests.support.payloads import Found, history_payloads

HISTORIES = Path(__file__).parents[1] / "histories"
FILES = sorted(HISTORIES.glob("*.json"))
BEFORE_CODEC = sorted((HISTORIES / "before-codec").glob("*.json"))

PLACES = {
    "workflow_execution_started_event_attributes.input",
    "workflow_execution_started_event_attributes.memo",
    "user_metadata.summary",
    "user_metadata.details",
    "activity_task_scheduled_event_attributes.input",
    "activity_task_completed_event_attributes.result",
    "activity_task_failed_event_attributes.failure.encoded_attributes",
    "marker_recorded_event_attributes.details",
    "workflow_execution_update_accepted_event_attributes.accepted_request.input.args",
    "workflow_execution_update_completed_event_attributes.outcome.success",
    "workflow_execution_signaled_event_attributes.input",
    "workflow_execution_completed_event_attributes.result",
    "workflow_execution_continued_as_new_event_attributes.input",
}
"""Where the corpus carries payloads: each must be among the places the walk reached."""


def read(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def place(found: Found) -> str:
    """`found`'s path without event, index or key, e.g. `user_metadata.summary`."""
    path = re.sub(r"\[[^\]]*\]", "", found.path).removeprefix("events.")
    return path.removesuffix(".payloads").removesuffix(".fields")


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_every_payload_of_a_recorded_history_is_encrypted_under_the_corpus_key(
    path: Path,
) -> None:
    found = history_payloads(read(path))
    assert found
    plain = [item.path for item in found if not is_encrypted(item.payload)]
    assert not plain, f"in clear in {path.name}: {plain}"
    key_ids = {item.payload.metadata[KEY_ID_METADATA].decode() for item in found}
    assert key_ids == {"replay-1"}
    codec = EncryptionCodec(REPLAY_KEYS)
    # Each decrypts to what a converter wrote (a JSON document, or binary/null for None).
    assert all(codec.decrypt(item.payload).metadata["encoding"] for item in found)


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_in_clear_are_only_search_attributes_and_the_sdk_markers_bookkeeping(
    path: Path,
) -> None:
    history = read(path)
    walked = {item.path for item in history_payloads(history)}
    clear = [item for item in history_payloads(history, clear_too=True) if item.path not in walked]
    started = history.events[0].workflow_execution_started_event_attributes
    if started.workflow_type.name == ORDER_WORKFLOW:
        assert clear  # every order publishes its status
    for item in clear:
        assert re.search(
            r"(search_attributes\.indexed_fields\['\w+'\]"
            r"|marker_recorded_event_attributes\.details\['(patch-data|data)'\]\.payloads\[\d+\])$",
            item.path,
        ), item.path


def test_the_walk_reaches_every_place_the_corpus_has_payloads() -> None:
    reached = {place(item) for path in FILES for item in history_payloads(read(path))}
    assert reached >= PLACES, f"never reached: {sorted(PLACES - reached)}"


@pytest.mark.parametrize("path", BEFORE_CODEC, ids=[path.name for path in BEFORE_CODEC])
def test_the_same_walk_finds_the_corpus_recorded_before_the_codec_in_clear(path: Path) -> None:
    """The check above can fail: the same scenarios recorded without the codec."""
    found = history_payloads(read(path))
    assert found
    assert not any(is_encrypted(item.payload) for item in found)
