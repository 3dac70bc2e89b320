"""Fault injection: make any adapter slow, flaky, unsure or stubborn, by configuration.

A `FaultProfile` is a list of `FaultRule`s. `with_faults` wraps one adapter (the
local ones today, HTTP ones later) in a proxy with the same async methods; every
call is checked against the rules, and the rules that match it add latency,
refuse it with a business error, fail it with a system error before it is made,
or make it and then report an unknown outcome. `apply_fault_profile` does that
for the four systems at once and hands back an `AdapterSet` for the worker.

The profile is JSON (the worker reads it from the `O2C_FAULTS` setting, inline
or as a file path; see `FaultProfile.from_setting`):

    {
      "seed": 7,
      "rules": [
        {"system": "billing", "operation": "create_invoice", "unknown_outcome_rate": 0.3},
        {"system": "*", "error_rate": 0.3},
        {"system": "crm", "customer_id": "CUST-GLOBEX", "business_error": "customer_blocked"}
      ]
    }

A rule matches a call when all of these hold:

- `system`: `crm`, `billing`, `logistics`, `payments`, or `*` (default) for any;
- `operation`: the adapter method name, e.g. `create_invoice`, or `*` (default).
  Only methods of that system's protocol in `adapters.<system>.protocol` are accepted;
- `customer_id` (optional): the call carries this customer id, as an argument
  named `customer_id`, a `Customer`, or a request with a `customer_id` field.
  A call that carries no customer id does not match (`create_invoice`, for one,
  names a billing account, not a customer);
- `sku` (optional): one of the request's `lines` has this SKU.

What a matching rule does:

- `latency_ms`: wait this long before anything else happens;
- `business_error`: refuse the call with `BusinessError(code, ...)`, never calling;
- `fail_times`: the first N matching calls of an operation with one idempotency
  key (or, for calls without one, one first argument) fail, later ones go through;
- `error_rate` (0..1): the probability of failing the call before it is made;
- `error_kind`: the failure `fail_times` and `error_rate` raise: `unavailable`
  (default, `SystemUnavailable`), `timeout` (`SystemTimeout`) or `rate_limited`
  (`RateLimited`, with `retry_after_ms` as its `retry_after` when given);
- `unknown_outcome_rate` (0..1): make the real call, so it takes effect, and then
  raise `UnknownOutcome` instead of returning its answer.

For every call the matching rules apply phase by phase, each phase in rule order:
all latencies, then the first business error, then `fail_times` and `error_rate`,
then the real call, then `unknown_outcome_rate`. A call no rule matches goes
straight through. `seed` makes the random draws repeatable; the `fail_times`
counters live in the proxy, so they are per worker process and start afresh
when it restarts.

The rules and the reading of a profile live in `adapters.faults.profile`; the
proxy, `with_faults` and `apply_fault_profile` in `adapters.faults.proxy`.
Callers import all of them from `adapters.faults`.
"""

from adapters.faults.profile import (
    FAULTS_SETTING,
    OPERATIONS,
    FaultProfile,
    FaultProfileError,
    FaultRule,
)
from adapters.faults.proxy import AdapterSet, apply_fault_profile, with_faults
from o2c_domain.systems import SYSTEMS

__all__ = [
    "FAULTS_SETTING",
    "OPERATIONS",
    "SYSTEMS",
    "AdapterSet",
    "FaultProfile",
    "FaultProfileError",
    "FaultRule",
    "apply_fault_profile",
    "with_faults",
]
