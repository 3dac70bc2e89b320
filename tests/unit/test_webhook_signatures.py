"""Standard Webhooks signatures: the specification's published vector, several entries
and secrets, the 5-minute tolerance either way, and every way a delivery is refused."""

from __future__ import annotations

import pytest

from o2c_service.webhooks.signatures import (
    SignatureRefused,
    new_secret,
    secret_key,
    sign,
    verify,
)

# The test vector of the Standard Webhooks reference libraries (and Svix's before them).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = "1614265330"
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
NOW = 1614265330.0


def headers(signature: str, timestamp: str = VECTOR_TIMESTAMP) -> dict[str, str]:
    return {"webhook-id": VECTOR_ID, "webhook-timestamp": timestamp, "webhook-signature": signature}


def test_the_published_vector_signs_and_verifies() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    assert verify([VECTOR_SECRET], headers(VECTOR_SIGNATURE), VECTOR_BODY, NOW) == VECTOR_ID


def test_any_entry_matching_any_secret_in_force_verifies() -> None:
    other = new_secret()
    entries = f"v2,abc v1,{'A' * 44} v1,bm90IGJhc2U2NA== {VECTOR_SIGNATURE}"
    assert verify([other, VECTOR_SECRET], headers(entries), VECTOR_BODY, NOW) == VECTOR_ID
    assert verify([VECTOR_SECRET, other], headers(VECTOR_SIGNATURE), VECTOR_BODY, NOW)


@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 300])
def test_a_timestamp_within_five_minutes_either_way_verifies(offset: int) -> None:
    timestamp = str(int(NOW) + offset)
    signature = sign(VECTOR_SECRET, VECTOR_ID, timestamp, VECTOR_BODY)
    assert verify([VECTOR_SECRET], headers(signature, timestamp), VECTOR_BODY, NOW)


@pytest.mark.parametrize(("offset", "said"), [(-301, "301 s old"), (301, "301 s in the future")])
def test_a_timestamp_further_off_is_refused_even_when_signed(offset: int, said: str) -> None:
    timestamp = str(int(NOW) + offset)
    signature = sign(VECTOR_SECRET, VECTOR_ID, timestamp, VECTOR_BODY)
    with pytest.raises(SignatureRefused, match=said):
        verify([VECTOR_SECRET], headers(signature, timestamp), VECTOR_BODY, NOW)


@pytest.mark.parametrize(
    ("changed", "said"),
    [
        ({"webhook-signature": ""}, "missing header.*webhook-signature"),
        ({"webhook-id": ""}, "missing header.*webhook-id"),
        ({"webhook-timestamp": "1614265330.5"}, "unix seconds"),
        ({"webhook-timestamp": "-1614265330"}, "unix seconds"),
        ({"webhook-id": "msg_other"}, "no webhook-signature entry matches"),
        ({"webhook-timestamp": "1614265331"}, "no webhook-signature entry matches"),
        ({"webhook-signature": VECTOR_SIGNATURE.replace("v1,", "v2,")}, "no .* matches"),
        ({"webhook-signature": "v1,not base64!"}, "no .* matches"),
        ({"webhook-signature": "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}, "no .* matches"),
    ],
)
def test_a_delivery_not_signed_as_sent_is_refused(changed: dict[str, str], said: str) -> None:
    with pytest.raises(SignatureRefused, match=said):
        verify([VECTOR_SECRET], {**headers(VECTOR_SIGNATURE), **changed}, VECTOR_BODY, NOW)


def test_a_changed_body_or_another_secret_is_refused() -> None:
    with pytest.raises(SignatureRefused):
        verify([VECTOR_SECRET], headers(VECTOR_SIGNATURE), b'{"test": 2432232315}', NOW)
    with pytest.raises(SignatureRefused):
        verify([new_secret()], headers(VECTOR_SIGNATURE), VECTOR_BODY, NOW)
    with pytest.raises(SignatureRefused):
        verify([], headers(VECTOR_SIGNATURE), VECTOR_BODY, NOW)


def test_new_secrets_are_random_whsec_keys_of_32_bytes() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_") and first != second
    assert len(secret_key(first)) == 32


@pytest.mark.parametrize("secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_%%%"])
def test_a_secret_that_is_not_whsec_base64_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        secret_key(secret)
