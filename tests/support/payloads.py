"""Every payload in a history, wherever it sits, found by walking the protobuf.

A new event type or field that carries payloads is found without being named here:
the walk visits every message field at any depth (inputs, results, signals,
updates, local activities' markers, memos, the start's user metadata, failures'
encoded attributes and details) and yields each `temporal.api.common.v1.Payload`.
Two kinds are left out, both written in clear by design (docs/security.md):
search attributes, which the server indexes, and the bookkeeping the SDK's core
writes into its own markers (a patch's id; a local activity's sequence number,
attempt and times), which never goes through the data converter.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, SearchAttributes
from temporalio.api.history.v1 import History, MarkerRecordedEventAttributes
from temporalio.client import WorkflowHistory
from temporalio.converter import PayloadCodec

PAYLOAD = Payload.DESCRIPTOR.full_name
SEARCH_ATTRIBUTES = SearchAttributes.DESCRIPTOR.full_name
MARKER = MarkerRecordedEventAttributes.DESCRIPTOR.full_name

CORE_MARKER_BOOKKEEPING = frozenset({("core_patch", "patch-data"), ("core_local_activity", "data")})
"""(marker name, detail) pairs the SDK's core fills itself; a local activity's input
and result are in `core_local_activity`'s other details, through the converter."""


@dataclass(frozen=True)
class Found:
    path: str
    """Where it sits, e.g. `events[3].user_metadata.summary`."""
    payload: Payload


def payloads(message: Message, path: str = "", *, clear_too: bool = False) -> Iterator[Found]:
    """Every payload in `message` (a history, an event, any protobuf), but search
    attributes and the core's marker bookkeeping unless `clear_too`."""
    name = message.DESCRIPTOR.full_name
    if name == PAYLOAD:
        assert isinstance(message, Payload)
        yield Found(path, message)
        return
    if name == SEARCH_ATTRIBUTES and not clear_too:
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        here = f"{path}.{field.name}" if path else field.name
        if field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.message_type is None:
                continue
            for key, item in value.items():
                if name == MARKER and not clear_too and _bookkeeping(message, key):
                    continue
                yield from payloads(item, f"{here}[{key!r}]", clear_too=clear_too)
        elif field.is_repeated:
            for index, item in enumerate(value):
                yield from payloads(item, f"{here}[{index}]", clear_too=clear_too)
        else:
            yield from payloads(value, here, clear_too=clear_too)


def _bookkeeping(marker: Message, detail: str) -> bool:
    assert isinstance(marker, MarkerRecordedEventAttributes)
    return (marker.marker_name, detail) in CORE_MARKER_BOOKKEEPING


def history_payloads(history: WorkflowHistory | History, *, clear_too: bool = False) -> list[Found]:
    raw = history if isinstance(history, History) else History(events=history.events)
    return list(payloads(raw, clear_too=clear_too))


async def decoded_payloads(history: WorkflowHistory | History, codec: PayloadCodec) -> list[Found]:
    """Every payload of `history` decoded with `codec`, at its path: what a reader
    holding the keys sees."""
    found = history_payloads(history)
    decoded = await codec.decode([item.payload for item in found])
    return [Found(item.path, payload) for item, payload in zip(found, decoded, strict=True)]


async def decoded_text(history: WorkflowHistory | History, codec: PayloadCodec) -> str:
    """The data of every payload of `history` decoded with `codec`, joined as text."""
    decoded = await decoded_payloads(history, codec)
    return "\n".join(item.payload.data.decode(errors="replace") for item in decoded)


def stored_text(history: WorkflowHistory) -> str:
    """What someone without the keys reads: the history's JSON (as the CLI prints it)
    and every payload's data as stored, search attributes included (the JSON shows a
    payload's data in base64, so a plain one's text is not in it as such)."""
    stored = [
        item.payload.data.decode(errors="replace")
        for item in history_payloads(history, clear_too=True)
    ]
    return "\n".join([history.to_json(), *stored])
