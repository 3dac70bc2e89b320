"""What one `o2c bench` run is asked to do: the command's options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from o2c_domain.systems import LocalCalls

DEFAULT_LATENCY_MS = 20
"""What `--remote` has the sandbox add to every request, unless `--latency-ms` says."""


@dataclass(frozen=True)
class BenchOptions:
    orders: int = 100
    floor: int | None = None
    """Floor workflows; None: as many as orders (with --parked: none). 0 skips the floor."""
    concurrency: int = 20
    rate: float | None = None
    local_activities: LocalCalls = False
    system_queues: bool = False
    """Orders send their normal activities to each system's task queue."""
    sqlite: Path | None = None
    address: str | None = None
    parked: int | None = None
    profile: Path | None = None
    """Profile the (first) worker during the orders phase and write the profile here."""
    workers: int = 1
    """Worker processes on the order task queue; the floor's worker runs in the first only."""
    remote: bool = False
    """Call every system over HTTP at a sandbox the bench starts (normal activities)."""
    latency_ms: int = DEFAULT_LATENCY_MS
    """With `remote`: added by the sandbox to every request."""

    @property
    def floor_count(self) -> int:
        if self.floor is not None:
            return self.floor
        return 0 if self.parked is not None else self.orders
