"""The task queue partitions of `o2c dev`'s Temporal server: one for a new data folder,
and a folder's server keeps what it was first started with.

What one partition does to a rate limit is measured against the server itself in
tests/integration/test_resilience_remote.py (`python -m tests.support.rate_limit_check`).
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from o2c_service.dev import dev_server_command
from o2c_service.dev_partitions import (
    ONE_PARTITION,
    PARTITIONS_FILE,
    SERVER_DEFAULT,
    dev_server_partitions,
)
from o2c_service.settings import Settings


def test_a_new_data_folder_gets_one_partition_per_queue_and_keeps_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "o2c")

    assert dev_server_partitions(settings) == 1
    (settings.data_dir / "temporal.db").write_bytes(b"")  # the server has run since
    assert dev_server_partitions(settings) == 1
    assert (settings.data_dir / PARTITIONS_FILE).read_text() == "1\n"


def test_a_folder_whose_server_ran_before_keeps_the_servers_default(tmp_path: Path) -> None:
    """Its waiting tasks may be in any of the default's partitions: reading only the first
    would strand the others'."""
    (tmp_path / "temporal.db").write_bytes(b"")
    settings = Settings(data_dir=tmp_path)

    assert dev_server_partitions(settings) == SERVER_DEFAULT
    assert dev_server_partitions(settings) == SERVER_DEFAULT
    assert not (tmp_path / PARTITIONS_FILE).exists()


def test_the_server_is_started_with_the_partitions_as_dynamic_config(tmp_path: Path) -> None:
    command = dev_server_command(Settings(data_dir=tmp_path), dynamic_config=ONE_PARTITION)

    flags = list(pairwise(command))
    assert ("--dynamic-config-value", "matching.numTaskqueueReadPartitions=1") in flags
    assert ("--dynamic-config-value", "matching.numTaskqueueWritePartitions=1") in flags
    assert "--dynamic-config-value" not in dev_server_command(Settings(data_dir=tmp_path))
