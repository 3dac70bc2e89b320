"""The OpenAPI documents in docs/contracts/ an integrator implements: current with the
code, and keeping the conventions of docs/remote-systems.md (an `Idempotency-Key` on
every write, a lookup by key for every write the protocol can look up, refusals as
problem details carrying a `code`)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from adapters.faults import OPERATIONS
from o2c_sandbox.openapi import COMMAND, document_path, rendered
from o2c_sandbox.serve import CONTRACTS

SYSTEMS = list(CONTRACTS)
LOOKUP_PATH = re.compile(r"^(?P<collection>/[\w-]+)/by-key/\{idempotency_key\}$")
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/SystemProblem"}}}


def committed(system: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(document_path(system).read_text())
    return loaded


def operations(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Each operation by its id: method, path, and what the document says of it."""
    return {
        described["operationId"]: (method.upper(), path, described)
        for path, methods in document["paths"].items()
        for method, described in methods.items()
    }


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_committed_document_is_current(system: str) -> None:
    path = document_path(system)
    stale = f"{path} is stale: regenerate it with `{COMMAND}` and commit it"
    assert path.exists(), stale
    assert path.read_text(encoding="utf-8") == rendered(CONTRACTS[system]), stale


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_write_is_a_post_that_requires_the_idempotency_key_header(system: str) -> None:
    writes = {
        name: described
        for name, (method, _, described) in operations(committed(system)).items()
        if method == "POST"
    }

    assert writes
    for name, described in writes.items():
        headers = [p for p in described.get("parameters", []) if p["in"] == "header"]
        assert [(p["name"], p["required"]) for p in headers] == [("Idempotency-Key", True)], name
        assert described["requestBody"]["required"] is True, name


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_write_the_protocol_can_look_up_has_a_lookup_by_key(system: str) -> None:
    listed = operations(committed(system))
    posts = {path for method, path, _ in listed.values() if method == "POST"}
    lookups = sorted(name for name in OPERATIONS[system] if name.startswith("find_"))

    for name in lookups:
        assert name in listed, f"{system}: no operation {name} in the document"
        method, path, described = listed[name]
        found = LOOKUP_PATH.match(path)
        assert method == "GET" and found, f"{name}: {method} {path}"
        assert found["collection"] in posts, f"{name}: no POST {found['collection']} to look up"
        not_made = described["responses"]["404"]
        assert "not_found" in not_made["description"] and not_made["content"] == PROBLEM, name
    # and only those: every lookup by key the document has is one the protocol makes
    by_key = sorted(name for name, (_, path, _) in listed.items() if LOOKUP_PATH.match(path))
    assert by_key == lookups


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_refusal_and_failure_is_a_problem_with_a_code(system: str) -> None:
    document = committed(system)
    problem = document["components"]["schemas"]["SystemProblem"]

    assert {"type", "title", "status", "detail", "code"} <= set(problem["required"])
    for name, (_, _, described) in operations(document).items():
        responses = described["responses"]
        assert {"4XX", "429", "503", "504"} <= set(responses), name
        for status, response in responses.items():
            if not status.startswith("2"):
                assert response["content"] == PROBLEM, f"{name} {status}"
        assert "Retry-After" in responses["429"]["headers"], name
