"""`o2c bench` (docs/benchmark.md) runs end to end and reports sane figures.

These check what the bench counts (every order closed, histories read, Actions
counted, memory found), never how fast anything was: timings depend on the
machine, and the targets beside them are reported, not enforced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory

from o2c_bench import report as figures
from o2c_bench.actions import ACTIVITY_SCHEDULED, LOCAL_ACTIVITIES
from o2c_bench.histories import HistorySize
from o2c_bench.profile import collapsed_stacks, top_functions
from o2c_domain.systems import SYSTEMS

REPO = Path(__file__).resolve().parents[2]
HISTORIES = REPO / "tests" / "histories"
RUN_TIMEOUT = 120
LIFECYCLE = [
    "crm.validate_customer",
    "billing.ensure_account",
    "billing.open_balance",
    "logistics.reserve_stock",
    "logistics.request_shipment",
    "logistics.confirm_shipment",
    "billing.create_invoice",
    "payments.record_payment",
    "billing.apply_payment",
]
"""A happy-path order's normal activities, in the order it schedules them."""


def bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    """`python -m o2c_service bench ARGS --json FILE`, as a user runs it; its JSON report."""
    return bench_printing(tmp_path, *args)[0]


def bench_printing(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    """The same: its JSON report, and what it printed."""
    report = tmp_path / "bench.json"
    done = o2c_bench(*args, "--json", str(report))
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "orders/s" in done.stdout or "parked" in done.stdout, done.stdout
    result: dict[str, Any] = json.loads(report.read_text())
    return result, done.stdout


def o2c_bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("O2C_")}
    return subprocess.run(
        [sys.executable, "-m", "o2c_service", "bench", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )  # fmt: skip


def assert_sane_common(report: dict[str, Any], orders: int) -> None:
    machine, run = report["machine"], report["run"]
    assert machine["cores"] >= 1
    assert machine["python"] and machine["temporalio"]
    assert len(machine["load_average"]) == 2
    assert machine["temporal_cli"] and "temporal" in machine["temporal_cli"]
    assert run["mode"] == "memory" and run["orders"] == orders
    history = report["history"]
    assert history["orders"] == orders
    assert 0 < history["events_mean"] <= history["events_max"]
    assert 0 < history["bytes_mean"] <= history["bytes_max"]
    assert history["workflow_tasks_mean"] >= 2
    assert history["activities_mean"] + history["local_activities_mean"] >= 5
    assert 0 < history["actions_mean"] <= history["actions_max"]
    kinds = history["actions_by_kind"]
    # The Updates: the booking read `OrderService.create` waits on, the shipment, the payment.
    assert kinds["workflow started"] == 1 and kinds["update accepted"] == 3
    assert abs(sum(kinds.values()) - history["actions_mean"]) < 0.1
    assert 0 <= history["status_current"] <= orders
    for process in (report["worker"], report["server"], *report["workers"]):
        assert process["pid"] > 0
        assert 0 < process["rss_bytes"] <= process["peak_rss_bytes"]
    assert len(report["workers"]) == run["workers"]
    assert report["worker"]["pid"] in {worker["pid"] for worker in report["workers"]}
    assert {target["figure"] for target in report["targets"]} >= {
        figures.EVENTS,
        figures.STATUS_CURRENT,
        figures.ACTIONS,
        figures.BYTES,
    }


def test_a_small_run_closes_every_order_and_reports_every_figure(tmp_path: Path) -> None:
    report = bench(tmp_path, "-n", "20", "--no-local-activities")

    assert_sane_common(report, 20)
    assert report["run"]["floor"] == 20 and report["run"]["local_activities"] is False
    floor = report["floor"]
    assert floor["workflows"] == 20 and floor["per_second"] > 0
    # Started, one activity (scheduled, started, completed), completed, and their workflow tasks.
    assert floor["events_per_workflow"] == 11
    assert floor["actions_per_workflow"] == 2  # the start and the activity
    lifecycle = report["lifecycle"]
    assert lifecycle["orders"] == lifecycle["closed"] == 20
    assert lifecycle["per_second"] > 0
    assert lifecycle["ratio_to_floor"] > 0
    for name in ("create_to_booked", "shipment_to_invoiced", "payment_to_closed"):
        latency = lifecycle[name]
        assert latency["count"] == 20
        assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert lifecycle["cpu"]["worker_ms"] > 0 and lifecycle["cpu"]["server_ms"] > 0
    assert lifecycle["worker_cpu_ratio_to_floor"] > 0
    assert lifecycle["server_cpu_ratio_to_floor"] > 0
    assert {target["figure"] for target in report["targets"]} >= {
        figures.RATIO,
        figures.WORKER_CPU,
        figures.SERVER_CPU,
        figures.BOOKED_P99,
    }
    assert report["history"]["activities_mean"] > 0
    assert report["history"]["actions_by_kind"][ACTIVITY_SCHEDULED] > 0
    assert report["history"]["local_activities_mean"] == 0
    assert report["parked"] is None
    # Normal activities: the histories say where the time went; no sandbox ran.
    assert {activity["count"] for activity in report["time"]["activities"]} == {20}
    assert report["sandbox"] is None
    booked = next(t for t in report["targets"] if t["figure"].startswith("create -> Booked"))
    assert booked["met"] is None, "all at once says nothing about the paced target"


def test_parked_orders_hold_memory_and_all_close_once_paid(tmp_path: Path) -> None:
    report = bench(tmp_path, "--parked", "5")

    assert_sane_common(report, 5)
    parked = report["parked"]
    assert parked["orders"] == parked["closed"] == 5
    assert parked["seconds_to_park"] > 0 and parked["seconds_to_close"] > 0
    for reading in ("server_before", "server_parked"):
        assert parked[reading]["rss_bytes"] > 0
    for reading in ("workers_before", "workers_parked"):
        assert [worker["rss_bytes"] > 0 for worker in parked[reading]] == [True]
    assert report["floor"] is None and report["lifecycle"] is None
    by_figure = {target["figure"]: target for target in report["targets"]}
    for figure in (figures.PARK_TIME, figures.PARKED_RSS, figures.CLOSE_TIME, figures.LOST):
        assert figure in by_figure
    lost = by_figure[figures.LOST]
    assert lost["value"] == 0 and lost["met"] is None, "5 orders say nothing of 10,000"


def test_local_activities_reach_the_orders_the_bench_starts(tmp_path: Path) -> None:
    report = bench(tmp_path, "-n", "5", "--floor", "0", "--local-activities")

    assert_sane_common(report, 5)
    assert report["run"]["local_activities"] is True
    assert report["lifecycle"]["closed"] == 5
    assert report["floor"] is None and report["lifecycle"]["ratio_to_floor"] is None
    assert report["lifecycle"]["worker_cpu_ratio_to_floor"] is None
    assert report["history"]["local_activities_mean"] > 0
    kinds = report["history"]["actions_by_kind"]
    assert kinds[LOCAL_ACTIVITIES] > 0 and ACTIVITY_SCHEDULED not in kinds
    assert report["time"] is None and report["sandbox"] is None, "nothing new to say"


def test_two_worker_processes_take_the_same_run_and_every_order_closes(tmp_path: Path) -> None:
    report = bench(tmp_path, "-n", "10", "--workers", "2")

    assert_sane_common(report, 10)
    assert report["run"]["workers"] == 2
    lifecycle = report["lifecycle"]
    assert lifecycle["orders"] == lifecycle["closed"] == 10, "nothing lost"
    workers = report["workers"]
    assert len(workers) == 2 and len({worker["pid"] for worker in workers}) == 2
    assert [worker["floor"] for worker in workers] == [True, False], "one floor worker"
    assert report["floor"]["workflows"] == 10
    # CPU per order is the workers' sum; each one's is beside it.
    for cpu in (report["floor"]["cpu"], lifecycle["cpu"]):
        assert len(cpu["worker_ms_each"]) == 2
        assert abs(sum(cpu["worker_ms_each"]) - cpu["worker_ms"]) < 0.05
    # Every workflow task of the measured orders was started by one of the two.
    history = report["history"]
    tasks = history["workflow_tasks_by_worker"]
    assert set(tasks) <= {worker["identity"] for worker in workers}
    assert sum(tasks.values()) >= history["workflow_tasks_mean"] * 10 - 0.5
    assert sum(worker["workflow_tasks"] for worker in workers) == sum(tasks.values())


def test_a_remote_run_calls_every_system_at_its_sandbox_and_says_where_the_time_goes(
    tmp_path: Path,
) -> None:
    report, printed = bench_printing(
        tmp_path, "-n", "5", "--floor", "0", "--remote", "--latency-ms", "2"
    )

    assert_sane_common(report, 5)
    run = report["run"]
    assert run["remote"] is True and run["sandbox_latency_ms"] == 2
    assert run["local_activities"] is False and run["system_queues"] is True
    assert report["lifecycle"]["orders"] == report["lifecycle"]["closed"] == 5
    sandbox = report["sandbox"]
    assert set(sandbox["calls_by_system"]) == set(SYSTEMS)
    assert all(calls > 0 for calls in sandbox["calls_by_system"].values()), sandbox
    assert sum(sandbox["calls_by_system"].values()) == sandbox["calls"]
    assert sandbox["calls_per_order"] == sandbox["calls"] / 5
    for system, calls in sandbox["calls_by_system"].items():
        operations = [op for op in sandbox["operations"] if op["system"] == system]
        assert sum(op["calls"] for op in operations) == calls
    assert all(op["failed"] == 0 and op["mean_ms"] > 0 for op in sandbox["operations"])
    time = report["time"]
    assert time["orders"] == 5
    assert [activity["activity"] for activity in time["activities"]] == LIFECYCLE
    assert all(activity["count"] == 5 for activity in time["activities"])
    share = time["share"]
    parts = ("activity_call", "activity_queue", "workflow_task", "workflow_task_queue", "waiting")
    assert abs(sum(share[f"{part}_pct"] for part in parts) - 100) < 0.5
    assert abs(sum(share[f"{part}_ms"] for part in parts) - share["end_to_end_mean_ms"]) < 0.5
    assert share["activity_call_ms"] > 0
    assert "where the time goes: 5 orders" in printed
    assert f"the sandbox's side (pid {sandbox['pid']}, +2 ms a request)" in printed
    for system in SYSTEMS:
        assert f"{system} {sandbox['calls_by_system'][system]}" in printed
    assert not running(sandbox["pid"]), "the sandbox stopped with the bench"


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_latency_is_the_sandboxs_and_remote_calls_are_never_local() -> None:
    alone = o2c_bench("--latency-ms", "5")
    local = o2c_bench("--remote", "--local-activities")

    assert alone.returncode == 1 and "give it with --remote" in alone.stderr
    assert local.returncode == 1 and "not --local-activities" in local.stderr


def test_the_bench_sees_whether_order_status_was_current_when_the_world_answered() -> None:
    # local-activities.json: Booked when the shipment came, Invoiced when the payment came.
    # happy.json was recorded paying at once: the payment arrived while it still said Shipped.
    def size(name: str) -> HistorySize:
        text = (HISTORIES / f"{name}.json").read_text()
        return HistorySize.of(list(WorkflowHistory.from_json(name, text).events))

    current, early = size("local-activities"), size("happy")

    assert (current.waits, current.stale_waits) == (2, 0)
    assert (early.waits, early.stale_waits) == (2, 1)


def test_the_profile_summary_counts_own_and_total_samples() -> None:
    raw = [
        "main (app.py:1);run (app.py:5);parse (json.py:10) 6\n",
        "main (app.py:1);run (app.py:5) 3\n",
        "main (app.py:1);run (app.py:5);run (app.py:5);parse (json.py:10) 1\n",
        "not a stack line\n",
    ]

    summary = top_functions(collapsed_stacks(raw), top=2)

    assert summary.total == 10
    assert [(f.function, f.location, f.own, f.total) for f in summary.top] == [
        ("parse", "json.py:10", 7, 7),
        ("run", "app.py:5", 3, 10),  # once per sample, recursion or not
    ]
    assert summary.top[0].own_pct == 70.0


def test_profile_writes_the_worker_profile_and_reports_its_top_functions(tmp_path: Path) -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "o2c_service", "bench", "--help"],
        cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT,
    ).stdout  # fmt: skip
    if "--profile" not in help_text:
        pytest.skip("the CLI does not pass --profile to the bench yet (o2c_service/cli)")
    profile = tmp_path / "profile.txt"

    report = bench(tmp_path, "-n", "5", "--floor", "0", "--profile", str(profile))

    found = report["profile"]
    assert found["file"] == str(profile) and profile.exists()
    assert found["tool"] in ("py-spy", "cProfile") and found["total"] > 0
    assert 0 < len(found["top"]) <= 15
    own = [function["own"] for function in found["top"]]
    assert own == sorted(own, reverse=True)
    if found["tool"] == "py-spy":  # collapsed stacks, as flamegraph.pl and speedscope read them
        assert sum(collapsed_stacks(profile.read_text().splitlines()).values()) == found["total"]


def test_the_handoff_probe_times_tasks_on_the_own_and_another_queue() -> None:
    """`python -m o2c_bench.handoff`: one line per run and queue, its schedule-to-start
    figures read from the run's history."""
    probe = subprocess.run(
        [sys.executable, "-m", "o2c_bench.handoff", "--rounds", "1"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    lines = [line for line in probe.stdout.splitlines() if "queue" in line]
    assert [line.split("  ")[0] for line in lines] == ["own queue", "other queue"]
    for line in lines:
        assert "ms for 9 activities; schedule-to-start mean: activity" in line
