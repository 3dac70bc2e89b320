"""How many partitions each task queue of `o2c dev`'s Temporal server has: one.

The server splits a task queue into partitions (4 by default) and its rate limit among
them, each partition dispatching its share on its own: at 2 per second, four
partitions start billing's calls in clumps of up to four every two seconds, and fall
short of the rate whenever one partition's backlog is empty. A dev server is one
process and needs no more than one; with one, a system's calls start one every
1/rate seconds after a first burst of rate + 1 (docs/architecture.md, "Task queues").

A server cannot simply read fewer partitions than it wrote to: tasks waiting in the
others would never be dispatched (an order stuck on its next step). So a data folder
whose server ran before `o2c dev` chose keeps the server's default, and says so; a new
one is written down as one partition.
"""

from __future__ import annotations

import logging

from o2c_service.settings import Settings

log = logging.getLogger("o2c.dev")

SERVER_DEFAULT = 4
"""Partitions per task queue of a Temporal server told nothing."""
PARTITIONS_FILE = "temporal-partitions"
"""In the data folder: the partitions its dev server was first started with."""


def partitions(count: int) -> tuple[str, ...]:
    """The dev server's dynamic config (`KEY=VALUE`) for `count` partitions per task queue."""
    return (
        f"matching.numTaskqueueReadPartitions={count}",
        f"matching.numTaskqueueWritePartitions={count}",
    )


ONE_PARTITION = partitions(1)


def dev_server_partitions(settings: Settings) -> int:
    """The partitions the data folder's dev server runs with: those it was first started
    with, written down; one for a new folder; the server's default for a folder whose
    server was first started before this choice was made (its database, no record)."""
    record = settings.data_dir / PARTITIONS_FILE
    if record.exists():
        return int(record.read_text().strip())
    if (settings.data_dir / "temporal.db").exists():
        log.info(
            "the Temporal dev server in %s keeps %d partitions per task queue (it was first "
            "started with them), so a rate limit starts calls in clumps; delete %s for one",
            settings.data_dir,
            SERVER_DEFAULT,
            settings.data_dir / "temporal.db",
        )
        return SERVER_DEFAULT
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    record.write_text("1\n")
    return 1
