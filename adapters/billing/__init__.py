"""Billing: accounts, invoices, payments applied to them, credit notes, customer credit, dunning.

`protocol` says what the system must do, `models` what crosses the boundary,
`local` (and its helpers) the embedded implementation on the local database.
"""
