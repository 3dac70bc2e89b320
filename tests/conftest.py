"""The suite runs on two processes (`pytest -n 2`, pyproject's addopts): each file's
tests stay together in one process, so a module's stack starts once; every test on the
time-skipping server runs in one process, in file order, because that server is shared
per process and one test's leftovers (a held activity) can stall its clock for the next."""

from __future__ import annotations

import os

import pytest

from tests.support.codec import TEST_KEYS, keys_setting

# Every process the suite starts (workers, `o2c dev`, the API) encrypts with the test keys,
# unless a test says otherwise.
os.environ.setdefault("O2C_CODEC_KEYS", keys_setting(TEST_KEYS))

pytest_plugins = [
    "tests.support.temporal_env",
    "tests.support.fixtures_db",
    "tests.support.stack",
    "tests.support.order_harness",
    "tests.support.resilience_processes",
]

TIME_SKIPPING = "time-skipping server"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        uses_time_skipping = "time_skipping_env" in getattr(item, "fixturenames", ())
        group = TIME_SKIPPING if uses_time_skipping else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
