"""Imports every module that declares an `ApiTable`, so `open_store` creates them all."""

import o2c_service.idempotency  # noqa: F401  (idempotency keys)
