"""Imports every module that declares an `ApiTable`, so `open_store` creates them all."""

import o2c_service.access.keys
import o2c_service.console.sessions
import o2c_service.idempotency
import o2c_service.webhooks.records  # noqa: F401  (webhook secrets and deliveries)
