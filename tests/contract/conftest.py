"""The `systems` fixture: each contract test runs once per adapter factory.

Every run starts from fresh, empty systems that the factory's seeder fills with
the same baseline (`tests.contract.builders.seed_baseline`): three customers and
four items, nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contract.builders import seed_baseline
from tests.support.adapter_factories import FACTORIES, AdapterFactory, SharedSandbox, Systems


@pytest.fixture(scope="session")
async def sandbox() -> AsyncIterator[SharedSandbox]:
    """The sandbox's servers, for the HTTP implementations, started once per process."""
    async with SharedSandbox.running() as running:
        yield running


@pytest.fixture(params=FACTORIES)
async def systems(
    request: pytest.FixtureRequest, tmp_path: Path, sandbox: SharedSandbox
) -> AsyncIterator[Systems]:
    """CRM, billing, logistics and payments of one implementation, with the baseline data."""
    factory: AdapterFactory = request.param
    async with factory.open(tmp_path, sandbox) as opened:
        await seed_baseline(opened.seeder)
        yield opened
