"""Business counters kept by the process that sees them happen: events an order refused
(the API) and the mismatches a reconciliation found (whichever process runs it).

Process-wide, as Prometheus counters are: every `/metrics` endpoint of the process
(`api_metrics.metrics_registry`) shows them. A reconciliation run from a cron job has no
endpoint of its own: it writes its figures to a file for node_exporter's textfile
collector instead (`record_reconcile_mismatches(..., textfile=...)`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, write_to_textfile

from o2c_service.outcomes import EventRejected

EVENTS_REJECTED = Counter(
    "o2c_events_rejected",
    "Events an order refused (HTTP 409/422, or a webhook rejected), by the Update it was "
    "sent as and the refusal's business code (or not_allowed: too early, too late, on hold; "
    "invalid: it contradicts the order).",
    ["event", "reason"],
    registry=None,
)


def count_rejected(event: str, refused: EventRejected) -> None:
    """One event `event` (its Update's name) refused by its order."""
    reason = refused.code or ("invalid" if refused.invalid else "not_allowed")
    EVENTS_REJECTED.labels(event=event, reason=reason).inc()


RECONCILE_MISMATCHES = Gauge(
    "o2c_reconcile_mismatches",
    "Mismatches the last reconciliation found between o2c's orders and a system, by system "
    "(crm, billing, logistics, payments) and kind of mismatch.",
    ["system", "kind"],
    registry=None,
)
RECONCILE_LAST_RUN = Gauge(
    "o2c_reconcile_last_run_timestamp_seconds",
    "When the last reconciliation finished (Unix time).",
    registry=None,
)
_reconciled: set[tuple[str, str]] = set()
"""Every (system, kind) a run of this process has reported: a mismatch gone shows 0."""


def record_reconcile_mismatches(
    found: Mapping[tuple[str, str], int], *, textfile: Path | None = None
) -> None:
    """What one reconciliation found: mismatches per (system, kind); none is an empty
    mapping. Kinds reported by an earlier run and absent now go to 0. `textfile`: also
    write these figures there (Prometheus text format, written atomically), for
    node_exporter's textfile collector, when the run's process has no `/metrics`."""
    for system, kind in _reconciled - set(found):
        RECONCILE_MISMATCHES.labels(system=system, kind=kind).set(0)
    for (system, kind), count in found.items():
        RECONCILE_MISMATCHES.labels(system=system, kind=kind).set(count)
    _reconciled.update(found)
    RECONCILE_LAST_RUN.set(time.time())
    if textfile is not None:
        registry = CollectorRegistry()
        registry.register(RECONCILE_MISMATCHES)
        registry.register(RECONCILE_LAST_RUN)
        write_to_textfile(str(textfile), registry)
