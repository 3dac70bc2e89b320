"""So many units of one SKU: the one value for what is ordered, reserved, shipped,
invoiced or returned, whichever layer holds it."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]


class SkuQuantity(BaseModel):
    """A positive quantity of one SKU."""

    model_config = ConfigDict(extra="forbid")

    sku: Sku
    quantity: int = Field(gt=0)
