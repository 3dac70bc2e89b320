"""Payments: received payments, refunds, and card authorisations and captures.

`protocol` says what the system must do, `models` what crosses the boundary,
`local` (and its helpers) the embedded implementation on the local database.
"""
