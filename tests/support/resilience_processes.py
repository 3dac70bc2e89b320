"""Resilience tests' processes: real, separately killable, and what Temporal says of them.

`Processes` runs the Temporal dev server (`o2c_service.dev`, a SQLite file in
the test's folder), `o2c worker` processes and, for remote systems, `o2c sandbox`,
each one its own OS process that a test can stop or kill. Once the sandbox runs,
the workers call the four systems over HTTP there (remote mode) and `calls` reads
what the sandbox answered. `activity_running` and `completed_attempts` read from
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
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client

from o2c_domain.systems import SYSTEMS
from o2c_service.dev import server_log, start_dev_server, stop_server, wait_for_server
from o2c_service.dev_partitions import ONE_PARTITION
from o2c_service.settings import Settings
from tests.support.sandbox_calls import SandboxCall, read_calls
from tests.support.stack import free_port, free_ports

DRIVER_PAUSE = 0.3
"""Seconds between two passes of one order's driver, and between two looks of a waiting test."""

WORKER_STARTUP = 60.0
"""Seconds a worker process may take to start polling."""

WORKER_READY = "worker polling task queue"
"""What `o2c worker` logs once it polls (`o2c_service.runners.run_worker`)."""

SANDBOX_READY = "sandbox {system} listening on"
"""What `o2c sandbox` logs once a system listens (`o2c_sandbox.serve.serve_sandbox`)."""

READ_TIMEOUT = 2.0
"""Seconds a remote-mode worker waits for a system's answer (O2C_HTTP_READ_TIMEOUT):
short, so that a request the sandbox holds is a timeout soon."""
HOLD = READ_TIMEOUT + 1.0
"""Seconds the sandbox holds a request it times out (O2C_SANDBOX_HOLD_SECONDS) before it
answers 504: past the worker's read timeout, so the worker has given up by then."""

LOG_TAIL_LINES = 40


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text) or "(empty)"


def logged(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m o2c_service <command>` with `env`, its output appended to `log`."""
    with log.open("ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "o2c_service", *command],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


# --- processes ----------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path
    killed: bool = False


@dataclass
class Processes:
    """The dev server, the workers and the sandbox of one test, on ports and files of its own."""

    settings: Settings
    """What the workers are given; once the sandbox runs, its four URLs too."""
    server: subprocess.Popen[bytes] | None = None
    server_stopped: bool = False
    workers: list[WorkerProcess] = field(default_factory=list)
    sandbox: subprocess.Popen[bytes] | None = None
    sandboxes_started: int = 0
    server_config: tuple[str, ...] = ONE_PARTITION
    """The dev server's dynamic config, as `o2c dev` starts it: one partition per queue."""

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
        self.server = start_dev_server(self.settings, dynamic_config=self.server_config)
        self.server_stopped = False
        return await wait_for_server(self.server, self.settings)

    async def stop_server(self) -> None:
        """SIGTERM the dev server and wait until it has exited."""
        assert self.server is not None
        self.server_stopped = True
        # stop_server blocks while it waits: off the event loop, so the drivers go on.
        await asyncio.to_thread(stop_server, self.server)

    # -- the sandbox: the four systems over HTTP ------------------------------------------

    @property
    def remote(self) -> bool:
        """Whether the workers call the systems over HTTP (the sandbox runs)."""
        return self.sandbox is not None

    def sandbox_log(self) -> Path:
        """The running (or last) sandbox's log: one file per sandbox started."""
        return self.settings.data_dir / f"sandbox-{self.sandboxes_started}.log"

    async def start_sandbox(self, faults: str | None = None, latency_ms: int = 0) -> None:
        """`python -m o2c_service sandbox` on four free consecutive ports over this test's
        database, with `faults` (O2C_SANDBOX_FAULTS) and `latency_ms` on every request;
        return once all four listen. Workers started from now on call it (remote mode)."""
        assert self.sandbox is None, "already running"
        there = self.settings.model_copy(update={"sandbox_port": free_ports(len(SYSTEMS))})
        env = os.environ | {
            "O2C_DATABASE_URL": there.database_url,
            "O2C_SANDBOX_HOST": there.sandbox_host,
            "O2C_SANDBOX_PORT": str(there.sandbox_port),
            "O2C_SANDBOX_LATENCY_MS": str(latency_ms),
            "O2C_SANDBOX_HOLD_SECONDS": str(HOLD),
        }
        env.pop("O2C_SANDBOX_FAULTS", None)
        if faults is not None:
            env["O2C_SANDBOX_FAULTS"] = faults
        self.sandboxes_started += 1
        self.sandbox = spawn(["sandbox"], env, self.sandbox_log())
        ready = [SANDBOX_READY.format(system=system) for system in SYSTEMS]
        await self._wait_for_lines(self.sandbox_log(), ready, "the sandbox did not listen")
        urls = {f"{system}_url": url for system, url in there.sandbox_urls().items()}
        self.settings = there.model_copy(update={**urls, "http_read_timeout": READ_TIMEOUT})

    async def stop_sandbox(self) -> None:
        """SIGTERM the sandbox and wait until it has exited (`start_sandbox` starts another,
        on other ports, faults and all forgotten)."""
        assert self.sandbox is not None, "not running"
        sandbox, self.sandbox = self.sandbox, None
        await asyncio.to_thread(stop_server, sandbox)

    async def calls(self) -> list[SandboxCall]:
        """Every request the sandbox has answered so far, oldest first."""
        urls = {system: self.settings.system_url(system) for system in SYSTEMS}
        return await read_calls({system: url for system, url in urls.items() if url})

    # -- workers ---------------------------------------------------------------------

    def start_worker(
        self, faults: str | None = None, settings: dict[str, str] | None = None
    ) -> WorkerProcess:
        """`python -m o2c_service worker` on this test's server, database and task queue,
        with more O2C_* `settings` if given. In remote mode it calls the sandbox, and
        gives up on an answer after READ_TIMEOUT seconds unless `settings` say otherwise."""
        log = self.settings.data_dir / f"worker-{len(self.workers) + 1}.log"
        env = os.environ | {
            "O2C_TEMPORAL_ADDRESS": self.settings.temporal_address,
            "O2C_TASK_QUEUE": self.settings.task_queue,
            "O2C_DATABASE_URL": self.settings.database_url,
        }
        env.pop("O2C_FAULTS", None)
        for system in self.settings.remote_systems():
            env[f"O2C_{system.upper()}_URL"] = str(self.settings.system_url(system))
        if self.remote:
            env["O2C_HTTP_READ_TIMEOUT"] = str(self.settings.http_read_timeout)
        env |= settings or {}
        if faults is not None:
            env["O2C_FAULTS"] = faults
        worker = WorkerProcess(spawn(["worker"], env, log), log)
        self.workers.append(worker)
        return worker

    async def wait_until_polling(self, worker: WorkerProcess) -> None:
        """Return once the worker says it polls its task queue."""
        await self._wait_for_lines(
            worker.log, [WORKER_READY], f"worker {worker.process.pid} did not start polling"
        )

    async def _wait_for_lines(self, log: Path, lines: list[str], failure: str) -> None:
        """Return once `log` holds each of `lines`; fail if a process dies, or at the deadline."""
        deadline = asyncio.get_running_loop().time() + WORKER_STARTUP
        while not all(line in logged(log) for line in lines):
            self.check_alive()
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"{failure}\n{self.logs()}")
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
        if self.sandbox is not None and self.sandbox.poll() is not None:
            pytest.fail(f"the sandbox exited with code {self.sandbox.returncode}\n{self.logs()}")
        for worker in self.workers:
            if not worker.killed and worker.process.poll() is not None:
                pytest.fail(
                    f"worker {worker.process.pid} exited with code {worker.process.returncode}"
                    f"\n{self.logs()}"
                )

    def logs(self) -> str:
        parts = [f"--- {server_log(self.settings)} (tail) ---\n{tail(server_log(self.settings))}"]
        parts += [f"--- {worker.log} (tail) ---\n{tail(worker.log)}" for worker in self.workers]
        if self.sandbox is not None:
            parts.append(f"--- {self.sandbox_log()} (tail) ---\n{tail(self.sandbox_log())}")
        return "\n".join(parts)

    def close(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()
        if self.server is not None:
            stop_server(self.server)
        if self.sandbox is not None:
            stop_server(self.sandbox)  # SIGTERM, and SIGKILL if it will not stop


@pytest_asyncio.fixture
async def processes(tmp_path: Path) -> AsyncIterator[Processes]:
    """This test's dev server, workers and sandbox, every one stopped after it."""
    running = Processes.for_test(tmp_path)
    try:
        yield running
    finally:
        running.close()


# --- what Temporal says about one activity of an order ----------------------------------


async def activity_running(client: Client, order_id: str, activity: str) -> bool:
    """Whether a worker has started `activity` for the order and not yet finished it."""
    description = await client.get_workflow_handle(order_id).describe()
    return any(
        pending.activity_type.name == activity
        and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        for pending in description.raw_description.pending_activities
    )


async def under_way_on(
    client: Client, order_ids: Iterable[str], worker: WorkerProcess
) -> list[tuple[str, str]]:
    """(order id, activity) for each activity of these orders that `worker` has started
    and not finished (a worker's identity is `<pid>@<host>`)."""
    identity = f"{worker.process.pid}@"

    async def of(order_id: str) -> list[tuple[str, str]]:
        description = await client.get_workflow_handle(order_id).describe()
        return [
            (order_id, pending.activity_type.name)
            for pending in description.raw_description.pending_activities
            if pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            and pending.last_worker_identity.startswith(identity)
        ]

    found = await asyncio.gather(*(of(order_id) for order_id in order_ids))
    return [pair for pairs in found for pair in pairs]


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
