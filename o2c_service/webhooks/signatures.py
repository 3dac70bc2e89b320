"""Standard Webhooks signatures (https://www.standardwebhooks.com/): what the sender
signs, how a `whsec_` secret becomes the HMAC key, and the check of a delivery.

The sender signs `{webhook-id}.{webhook-timestamp}.{body}` (the body as the raw bytes
sent) with HMAC-SHA256 under the base64-decoded part of its `whsec_` secret, and sends
`webhook-signature: v1,<base64 digest>`, possibly several entries separated by spaces
(one per secret while it rotates). Any one entry matching any secret in force verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta

SECRET_PREFIX = "whsec_"
TOLERANCE = timedelta(minutes=5)
"""How far `webhook-timestamp` may be from now, either way: older is a replay, newer
a clock too far off to trust."""
SECRET_BYTES = 32
ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER = (
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


class SignatureRefused(Exception):
    """The delivery is not signed by a secret in force (HTTP 401); the message says why."""


def new_secret() -> str:
    """A fresh random secret, `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret: its base64-decoded part."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with '{SECRET_PREFIX}'")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as error:
        raise ValueError("a webhook secret is 'whsec_' and base64") from error
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def sign(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """The `v1,<base64>` signature entry of a delivery under `secret`."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(
    secrets_in_force: Sequence[str], headers: Mapping[str, str], body: bytes, now: float
) -> str:
    """The delivery's `webhook-id` once its headers prove a secret in force signed `body`
    within `TOLERANCE` of `now` (unix seconds); `SignatureRefused` saying why otherwise."""
    missing = [h for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER) if not headers.get(h)]
    if missing:
        raise SignatureRefused(f"missing header(s): {', '.join(missing)}")
    webhook_id, timestamp = headers[ID_HEADER], headers[TIMESTAMP_HEADER]
    if not _UNIX_SECONDS.fullmatch(timestamp):
        raise SignatureRefused(f"{TIMESTAMP_HEADER} must be unix seconds, e.g. 1700000000")
    off = int(timestamp) - now
    if abs(off) > TOLERANCE.total_seconds():
        when = "in the future" if off > 0 else "old"
        raise SignatureRefused(
            f"{TIMESTAMP_HEADER} is {abs(off):.0f} s {when}; at most "
            f"{TOLERANCE.total_seconds():.0f} s either way is accepted"
        )
    expected = [
        base64.b64decode(sign(secret, webhook_id, timestamp, body).removeprefix("v1,"))
        for secret in secrets_in_force
    ]
    for entry in headers[SIGNATURE_HEADER].split(" "):
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            received = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        if any(hmac.compare_digest(received, digest) for digest in expected):
            return webhook_id
    raise SignatureRefused(f"no {SIGNATURE_HEADER} entry matches a secret in force")
