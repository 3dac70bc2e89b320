"""Idempotency keys: every request that changes something carries one, derived from
the order and the step, so a retried or replayed call finds the first result."""

IdempotencyKey = str
