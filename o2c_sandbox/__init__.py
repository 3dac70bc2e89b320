"""Sandbox services: CRM, billing, logistics and payments as HTTP servers on loopback.

Each serves its system's REST contract (`adapters/<system>/http_contract.py`) over
the local systems' database, with a set latency and the fault profiles of
`adapters.faults`, applied at the HTTP level: an unavailable system answers 503, a
rate-limited one 429 with `Retry-After`, a timeout holds the request past the
client's read timeout before acting, an unknown outcome holds it after the write
took effect. `o2c sandbox` runs the four; `o2c dev --remote` runs them beside the
worker. Every request is logged on the `o2c.sandbox` logger and kept for
`GET /_sandbox/calls`, so tests and people can count what crossed the wire.
"""
