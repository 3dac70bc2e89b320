"""The codec key `o2c dev` makes for a newcomer, and the keys it leaves alone.

The first start without keys, a restart and the UI reading with the key made are
in tests/integration/test_temporal_ui_codec.py; these are the cases around it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from o2c_service.codec.keys import CodecKeys, CodecKeysError
from o2c_service.dev import ensure_codec_key
from o2c_service.settings import Settings
from tests.support.codec import TEST_KEYS, keys_setting


def test_keys_given_in_the_environment_are_used_and_no_file_is_written(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, codec_keys=SecretStr(keys_setting(TEST_KEYS)))
    assert ensure_codec_key(settings) is None
    assert not (tmp_path / "codec-keys").exists()


def test_a_key_file_of_ones_own_is_kept_as_it_is(tmp_path: Path) -> None:
    own = tmp_path / "elsewhere" / "keys"
    own.parent.mkdir()
    own.write_text(keys_setting(TEST_KEYS) + "\n")
    settings = Settings(data_dir=tmp_path, codec_keys=None, codec_key_file=own)
    assert ensure_codec_key(settings) == own
    assert CodecKeys.from_file(own) == TEST_KEYS
    assert not (tmp_path / "codec-keys").exists()


def test_a_key_file_without_a_usable_key_stops_it_before_anything_starts(tmp_path: Path) -> None:
    (tmp_path / "codec-keys").write_text("k1=not base64!\n")
    with pytest.raises(CodecKeysError, match="key 'k1' is not valid base64"):
        ensure_codec_key(Settings(data_dir=tmp_path, codec_keys=None))
