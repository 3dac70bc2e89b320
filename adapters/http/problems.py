"""The error body every system answers a refusal or failure with: an RFC 9457 problem
whose `code` member carries the business code the protocols speak of."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

PROBLEM_MEDIA_TYPE = "application/problem+json"
NOT_FOUND = "not_found"
"""The code a lookup by idempotency key answers (404) when nothing was made with the key."""


def problem_type(code: str) -> str:
    return f"urn:o2c:system-problem:{code}"


class SystemProblem(BaseModel):
    """RFC 9457 problem details, with the business `code` as an extension member."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="`urn:o2c:system-problem:<code>`.")
    title: str
    status: int
    detail: str
    code: str = Field(description="The business code, e.g. `out_of_stock`.")

    @classmethod
    def of(cls, status: int, code: str, detail: str) -> SystemProblem:
        return cls(
            type=problem_type(code),
            title=code.replace("_", " ").capitalize(),
            status=status,
            detail=detail,
            code=code,
        )
