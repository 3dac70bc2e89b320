"""Logistics (the 3PL): stock reservations, shipment requests and dispatches, returns.

`protocol` says what the system must do, `models` what crosses the boundary,
`local` (and its helpers) the embedded implementation on the local database.
"""
