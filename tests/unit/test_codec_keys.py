"""Codec keys as an operator writes them, and the codec's refusals, each naming what is wrong."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload

from o2c_service.codec.encryption import (
    KEY_ID_METADATA,
    EncryptionCodec,
    PayloadDecryptionError,
    is_encrypted,
)
from o2c_service.codec.keys import (
    CodecKeys,
    CodecKeysError,
    UnknownCodecKey,
    new_key,
    write_key_file,
)
from o2c_service.settings import Settings
from tests.support.codec import test_key

ORDER_JSON = b'{"customer_id": "CUST-ACME", "name": "Acme Corporation"}'


def plain(data: bytes = ORDER_JSON) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


def test_the_first_key_is_current_and_every_key_is_held() -> None:
    first, second = new_key("k2"), new_key("k1")
    keys = CodecKeys.parse(f"{first.line()}, {second.line()}", "O2C_CODEC_KEYS")
    assert keys.current.key_id == "k2"
    assert keys.secret("k1") == second.secret


def test_a_key_file_takes_one_key_per_line_with_comments(tmp_path: Path) -> None:
    path = tmp_path / "codec-keys"
    write_key_file(path, CodecKeys((new_key("k2"), new_key("k1"))))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert CodecKeys.from_file(path).ids() == ["k2", "k1"]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("k1", "key-id=<base64"),
        ("k1=%%%", "'k1' is not valid base64"),
        (f"k1={base64.b64encode(b'short').decode()}", "'k1' is 5 bytes"),
        (f"{test_key('k1').line()},{test_key('k1').line()}", "repeated: k1"),
        ("# only a comment", "no key in it"),
    ],
    ids=["no separator", "not base64", "too short", "repeated id", "empty"],
)
def test_keys_that_cannot_be_used_are_refused_naming_why(text: str, named: str) -> None:
    with pytest.raises(CodecKeysError, match=named) as refused:
        CodecKeys.parse(text, "O2C_CODEC_KEYS")
    assert "O2C_CODEC_KEYS" in str(refused.value)


def test_settings_without_keys_say_where_keys_come_from(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, codec_keys=None)
    with pytest.raises(CodecKeysError, match="O2C_CODEC_KEYS") as missing:
        settings.codec()
    assert str(tmp_path / "codec-keys") in str(missing.value)


async def test_a_payload_is_sealed_under_the_current_key_and_opens_after_rotation() -> None:
    before = CodecKeys((test_key("k1"),))
    sealed = (await EncryptionCodec(before).encode([plain()]))[0]
    assert is_encrypted(sealed)
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    assert b"Acme" not in sealed.SerializeToString()
    after = before.rotated(test_key("k2"))
    assert (await EncryptionCodec(after).decode([sealed]))[0] == plain()
    assert (await EncryptionCodec(after).encode([plain()]))[0].metadata[KEY_ID_METADATA] == b"k2"


async def test_a_plain_payload_passes_through_decoding() -> None:
    assert (await EncryptionCodec(CodecKeys((test_key("k1"),))).decode([plain()])) == [plain()]


async def test_a_payload_under_a_key_not_held_fails_naming_the_key() -> None:
    sealed = EncryptionCodec(CodecKeys((test_key("k1"),))).encrypt(plain())
    with pytest.raises(UnknownCodecKey, match=r"'k1'.*not among the codec keys held here \(k2\)"):
        await EncryptionCodec(CodecKeys((test_key("k2"),))).decode([sealed])


async def test_a_payload_relabelled_or_altered_does_not_decrypt() -> None:
    keys = CodecKeys((test_key("k1"), test_key("k2")))
    codec = EncryptionCodec(keys)
    relabelled = codec.encrypt(plain())
    relabelled.metadata[KEY_ID_METADATA] = b"k2"
    altered = codec.encrypt(plain())
    altered.data = altered.data[:-1] + bytes([altered.data[-1] ^ 1])
    for payload in (relabelled, altered):
        with pytest.raises(PayloadDecryptionError, match="does not decrypt"):
            codec.decrypt(payload)
