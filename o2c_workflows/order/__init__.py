"""The order workflow, one module per concern.

`workflow.py` holds `OrderWorkflow`: `run` as the lifecycle and the thin
declarations of its Updates, Signals and query. Beside it, each concern is a
layer the workflow class is built from, lowest first: `timeline` (status,
timeline, what the Temporal UI shows), `steps` (calling a system, parking a
failed step for support, continue-as-new), `compensation` (cancelling and
undoing), `dunning_timers`, `cash` (card capture and cash application),
`fulfilment` (booking, shipment request, invoicing), `events` (what each
outside event does); `guards` are the pure checks of whether an event fits.
"""
