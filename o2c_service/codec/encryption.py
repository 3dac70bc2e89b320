"""AES-256-GCM over whole payloads, the key id in each payload's metadata.

The payload a converter made (its metadata and data, so even the encoding and type
names) is serialised and encrypted under the current key with a fresh 96-bit nonce;
the key id is bound to the ciphertext as associated data, so a payload relabelled
with another key's id does not decrypt. Payloads this codec did not encode (plain
ones, from orders started before it) pass through decoding unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from o2c_service.codec.keys import CodecKeys, CodecKeysError

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12


class PayloadDecryptionError(CodecKeysError):
    """A payload under a known key id that does not decrypt: altered, or the key's
    material is not what encrypted it."""


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: CodecKeys) -> None:
        self.keys = keys
        self._ciphers = {key.key_id: AESGCM(key.secret) for key in keys.keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.keys.current.key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if not is_encrypted(payload):
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            self.keys.secret(key_id)  # raises UnknownCodecKey, naming it
        assert cipher is not None
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            raise PayloadDecryptionError(
                f"a payload under key '{key_id}' does not decrypt: it was altered, or the key "
                f"held as '{key_id}' is not the one that encrypted it"
            ) from None
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded
