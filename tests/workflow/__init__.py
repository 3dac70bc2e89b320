"""The order and refund workflows on Temporal servers against stub activities, and replay."""
