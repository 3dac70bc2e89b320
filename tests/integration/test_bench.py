"""`o2c bench` (docs/benchmark.md) runs end to end and reports sane figures.

These check what the bench counts (every order closed, histories read, memory
found), never how fast anything was: timings depend on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 120


def bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    """`python -m o2c_service bench ARGS --json FILE`, as a user runs it; its JSON report."""
    report = tmp_path / "bench.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith("O2C_")}
    done = subprocess.run(
        [sys.executable, "-m", "o2c_service", "bench", *args, "--json", str(report)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "orders/s" in done.stdout or "parked" in done.stdout, done.stdout
    result: dict[str, Any] = json.loads(report.read_text())
    return result


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
    for process in (report["worker"], report["server"]):
        assert process["pid"] > 0
        assert 0 < process["rss_bytes"] <= process["peak_rss_bytes"]
    assert {target["figure"] for target in report["targets"]} >= {
        "history events per order (max)",
        "history bytes per order (max)",
    }


def test_a_small_run_closes_every_order_and_reports_every_figure(tmp_path: Path) -> None:
    report = bench(tmp_path, "-n", "20", "--no-local-activities")

    assert_sane_common(report, 20)
    assert report["run"]["floor"] == 20 and report["run"]["local_activities"] is False
    floor = report["floor"]
    assert floor["workflows"] == 20 and floor["per_second"] > 0
    # Started, one activity (scheduled, started, completed), completed, and their workflow tasks.
    assert floor["events_per_workflow"] == 11
    lifecycle = report["lifecycle"]
    assert lifecycle["orders"] == lifecycle["closed"] == 20
    assert lifecycle["per_second"] > 0
    assert lifecycle["ratio_to_floor"] > 0
    for name in ("create_to_booked", "shipment_to_invoiced", "payment_to_closed"):
        latency = lifecycle[name]
        assert latency["count"] == 20
        assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert lifecycle["cpu"]["worker_ms"] > 0 and lifecycle["cpu"]["server_ms"] > 0
    assert report["history"]["activities_mean"] > 0
    assert report["history"]["local_activities_mean"] == 0
    assert report["parked"] is None
    booked = next(t for t in report["targets"] if t["figure"].startswith("create -> Booked"))
    assert booked["met"] is None, "all at once says nothing about the paced target"


def test_parked_orders_hold_memory_and_all_close_once_paid(tmp_path: Path) -> None:
    report = bench(tmp_path, "--parked", "5")

    assert_sane_common(report, 5)
    parked = report["parked"]
    assert parked["orders"] == parked["closed"] == 5
    assert parked["seconds_to_park"] > 0 and parked["seconds_to_close"] > 0
    for reading in ("worker_before", "worker_parked", "server_before", "server_parked"):
        assert parked[reading]["rss_bytes"] > 0
    assert report["floor"] is None and report["lifecycle"] is None


def test_local_activities_reach_the_orders_the_bench_starts(tmp_path: Path) -> None:
    report = bench(tmp_path, "-n", "5", "--floor", "0", "--local-activities")

    assert_sane_common(report, 5)
    assert report["run"]["local_activities"] is True
    assert report["lifecycle"]["closed"] == 5
    assert report["floor"] is None and report["lifecycle"]["ratio_to_floor"] is None
    assert report["history"]["local_activities_mean"] > 0
