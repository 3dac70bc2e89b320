"""The only code that knows an external system: a package per system.

`crm/`, `billing/`, `logistics/` and `payments/` each hold the system's
`protocol` (what it must do), its `models` (what crosses the boundary) and its
`local` implementation on the embedded database (`local/`: the database, its
tables, the demo data and `open_local_adapters`, which wires the four).
`errors` says how a system says no; `faults` injects failures into any adapter;
`keys` names the idempotency key every change carries.
"""
