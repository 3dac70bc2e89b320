"""Payload encryption: what Temporal stores of an order is ciphertext, readable only
by processes holding the keys (the worker, the API) and by the codec server that
the Temporal UI and CLI ask to decode (docs/security.md)."""
