"""Resilience tests' processes: real, separately killable, and what Temporal says of them.

`Processes` runs the Temporal dev server (`o2c_service.dev`, a SQLite file in
the test's folder) and `o2c worker` processes, each one its own OS process that
a test can stop or kill. `activity_running` and `completed_attempts` read from
Temporal how far one activity of an order has got. The orders they serve are
driven by `tests.support.resilience_batch.Batch`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client

from o2c_service.dev import server_log, start_dev_server, stop_server, wait_for_server
from o2c_service.settings import Settings
from tests.support.stack import free_port

DRIVER_PAUSE = 0.3
"""Seconds between two passes of one order's driver, and between two looks of a waiting test."""

WORKER_STARTUP = 60.0
"""Seconds a worker process may take to start polling."""

WORKER_READY = "worker polling task queue"
"""What `o2c worker` logs once it polls (`o2c_service.runners.run_worker`)."""

LOG_TAIL_LINES = 40


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text) or "(empty)"


# --- processes ----------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path
    killed: bool = False


@dataclass
class Processes:
    """The dev server and the workers of one test, on ports and files of its own."""

    settings: Settings
    server: subprocess.Popen[bytes] | None = None
    server_stopped: bool = False
    workers: list[WorkerProcess] = field(default_factory=list)

    @classmethod
    def for_test(cls, tmp_path: Path) -> Processes:
        return cls(
            Settings(
                temporal_address=f"127.0.0.1:{free_port()}",
                temporal_ui_url=f"http://127.0.0.1:{free_port()}",
                data_dir=tmp_path,
                database_url=f"sqlite:///{tmp_path / 'o2c.db'}",
                task_queue=f"resilience-{uuid.uuid4()}",
            )
        )

    # -- the Temporal dev server ---------------------------------------------------

    async def start_server(self) -> Client:
        """Start the dev server (the same SQLite file and port every time) and connect."""
        assert self.server is None or self.server.poll() is not None, "already running"
        self.server = start_dev_server(self.settings)
        self.server_stopped = False
        return await wait_for_server(self.server, self.settings)

    async def stop_server(self) -> None:
        """SIGTERM the dev server and wait until it has exited."""
        assert self.server is not None
        self.server_stopped = True
        # stop_server blocks while it waits: off the event loop, so the drivers go on.
        await asyncio.to_thread(stop_server, self.server)

    # -- workers ---------------------------------------------------------------------

    def start_worker(
        self, faults: str | None = None, settings: dict[str, str] | None = None
    ) -> WorkerProcess:
        """`python -m o2c_service worker` on this test's server, database and task queue,
        with more O2C_* `settings` if given."""
        log = self.settings.data_dir / f"worker-{len(self.workers) + 1}.log"
        env = os.environ | {
            "O2C_TEMPORAL_ADDRESS": self.settings.temporal_address,
            "O2C_TASK_QUEUE": self.settings.task_queue,
            "O2C_DATABASE_URL": self.settings.database_url,
        }
        env.pop("O2C_FAULTS", None)
        env |= settings or {}
        if faults is not None:
            env["O2C_FAULTS"] = faults
        with log.open("ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "o2c_service", "worker"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(process, log)
        self.workers.append(worker)
        return worker

    async def wait_until_polling(self, worker: WorkerProcess) -> None:
        """Return once the worker says it polls its task queue."""
        deadline = asyncio.get_running_loop().time() + WORKER_STARTUP
        while WORKER_READY not in worker.log.read_text(errors="replace"):
            self.check_alive()
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"worker {worker.process.pid} did not start polling\n{self.logs()}")
            await asyncio.sleep(DRIVER_PAUSE)

    async def kill_worker(self, worker: WorkerProcess) -> None:
        """SIGKILL: no graceful shutdown; whatever it was doing is simply lost."""
        worker.killed = True
        worker.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(worker.process.wait)

    # -- watching them -----------------------------------------------------------------

    def check_alive(self) -> None:
        """Fail at once, with the logs, if a process died that the test did not stop."""
        if self.server is not None and not self.server_stopped and self.server.poll() is not None:
            pytest.fail(f"the dev server exited with code {self.server.returncode}\n{self.logs()}")
        for worker in self.workers:
            if not worker.killed and worker.process.poll() is not None:
                pytest.fail(
                    f"worker {worker.process.pid} exited with code {worker.process.returncode}"
                    f"\n{self.logs()}"
                )

    def logs(self) -> str:
        parts = [f"--- {server_log(self.settings)} (tail) ---\n{tail(server_log(self.settings))}"]
        parts += [f"--- {worker.log} (tail) ---\n{tail(worker.log)}" for worker in self.workers]
        return "\n".join(parts)

    def close(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()
        if self.server is not None:
            stop_server(self.server)


# --- what Temporal says about one activity of an order ----------------------------------


async def activity_running(client: Client, order_id: str, activity: str) -> bool:
    """Whether a worker has started `activity` for the order and not yet finished it."""
    description = await client.get_workflow_handle(order_id).describe()
    return any(
        pending.activity_type.name == activity
        and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        for pending in description.raw_description.pending_activities
    )


async def local_calls_recorded(client: Client, order_id: str) -> int:
    """How many local activities the order's history has recorded (one marker each)."""
    return len(
        [
            event
            async for event in client.get_workflow_handle(order_id).fetch_history_events()
            if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
        ]
    )


async def completed_attempts(client: Client, order_id: str, activity: str) -> list[int]:
    """For each time the order ran `activity` to completion, the attempt that completed it."""
    scheduled: set[int] = set()
    started: dict[int, int] = {}
    attempts = []
    async for event in client.get_workflow_handle(order_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == activity:
                scheduled.add(event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            started[attributes.scheduled_event_id] = attributes.attempt
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled_id = event.activity_task_completed_event_attributes.scheduled_event_id
            if scheduled_id in scheduled:
                attempts.append(started[scheduled_id])
    return attempts
