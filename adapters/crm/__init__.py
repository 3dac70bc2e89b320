"""CRM: customers, their credit limits and holds.

`protocol` says what the system must do, `models` what crosses the boundary,
`local` (and its helpers) the embedded implementation on the local database.
"""
