"""The payload codec keys the test suite runs with.

Fixed, so that the replay corpus recorded under `REPLAY_KEYS` replays in any later
run; test-only material, never a deployment's. `tests/conftest.py` puts `TEST_KEYS`
in O2C_CODEC_KEYS for every process the suite starts.
"""

from __future__ import annotations

import hashlib

from temporalio.converter import DataConverter

from o2c_service.codec.converter import data_converter
from o2c_service.codec.keys import CodecKey, CodecKeys


def test_key(key_id: str) -> CodecKey:
    """A key derived from its id: the same bytes in every run."""
    return CodecKey(key_id, hashlib.sha256(f"o2c test codec key {key_id}".encode()).digest())


test_key.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test

REPLAY_KEYS = CodecKeys((test_key("replay-1"),))
"""What tests/histories/*.json are encrypted with (`tests.support.record_histories`)."""
REPLAY_CONVERTER: DataConverter = data_converter(REPLAY_KEYS)
"""The converter the corpus is recorded with: every payload under `replay-1`."""
TEST_KEYS = CodecKeys((test_key("test-1"), *REPLAY_KEYS.keys))
"""Every test process's keys: a current key of its own, and the corpus's to read it."""
TEST_CONVERTER: DataConverter = data_converter(TEST_KEYS)


def keys_setting(keys: CodecKeys) -> str:
    """`keys` as O2C_CODEC_KEYS takes them."""
    return ",".join(key.line() for key in keys.keys)
