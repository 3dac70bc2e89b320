"""Imports every module that declares an `ApiTable`, so `open_store` creates them all."""

import o2c_service.access.keys  # noqa: F401  (api_keys)
import o2c_service.webhooks.records  # noqa: F401  (webhook secrets and deliveries)
import o2c_service.idempotency  # noqa: F401  (idempotency keys)
