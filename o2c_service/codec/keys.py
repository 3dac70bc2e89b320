"""The keys payloads are encrypted with: one current, the rest kept to decrypt.

Keys are written `key-id=<base64 of 32 bytes>`, several separated by commas or
newlines, the current one first; lines starting with `#` are comments. They come
from `O2C_CODEC_KEYS`, else from the file `O2C_CODEC_KEY_FILE` (default
`<data folder>/codec-keys`, which `o2c dev` writes on its first start). Rotating is
putting a new key first: new payloads use it, histories written under the old
keys still decrypt while those stay listed (docs/security.md).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

KEY_BYTES = 32
"""AES-256."""
KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class CodecKeysError(ValueError):
    """Keys that cannot be used: missing, malformed, or asked for and not held."""


class UnknownCodecKey(CodecKeysError):
    def __init__(self, key_id: str, known: list[str]) -> None:
        super().__init__(
            f"the payload was encrypted with key '{key_id}', which is not among the codec keys "
            f"held here ({', '.join(known)}): add it to O2C_CODEC_KEYS or the key file, after "
            "the current key"
        )
        self.key_id = key_id


@dataclass(frozen=True)
class CodecKey:
    key_id: str
    secret: bytes = field(repr=False)

    def line(self) -> str:
        """As written in O2C_CODEC_KEYS or a key file."""
        return f"{self.key_id}={base64.b64encode(self.secret).decode()}"


@dataclass(frozen=True)
class CodecKeys:
    """The current key (new payloads) and every key still accepted (old payloads)."""

    keys: tuple[CodecKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise CodecKeysError("no codec key given: at least one `key-id=<base64>` is needed")
        ids = [key.key_id for key in self.keys]
        repeated = sorted({key_id for key_id in ids if ids.count(key_id) > 1})
        if repeated:
            raise CodecKeysError(f"codec key ids must be unique; repeated: {', '.join(repeated)}")

    @property
    def current(self) -> CodecKey:
        return self.keys[0]

    def ids(self) -> list[str]:
        return [key.key_id for key in self.keys]

    def secret(self, key_id: str) -> bytes:
        for key in self.keys:
            if key.key_id == key_id:
                return key.secret
        raise UnknownCodecKey(key_id, self.ids())

    @classmethod
    def parse(cls, text: str, source: str) -> CodecKeys:
        """`id=base64` entries, by comma or line; `source` names where they came from
        in every error (never the key material)."""
        keys: list[CodecKey] = []
        lines = (line.strip() for line in text.splitlines())
        entries = (
            entry.strip()
            for line in lines
            if line and not line.startswith("#")
            for entry in line.split(",")
        )
        for entry in entries:
            if not entry:
                continue
            key_id, separator, encoded = entry.partition("=")
            key_id = key_id.strip()
            if not separator or not KEY_ID.fullmatch(key_id):
                raise CodecKeysError(
                    f"{source}: each key is `key-id=<base64 of {KEY_BYTES} bytes>`, the id made "
                    f"of letters, digits, '.', '_' or '-'; got an entry starting "
                    f"'{entry[:12]}...'"
                )
            standard = encoded.strip().translate(str.maketrans("-_", "+/"))
            try:
                secret = base64.b64decode(standard, validate=True)
            except (binascii.Error, ValueError):
                raise CodecKeysError(f"{source}: key '{key_id}' is not valid base64") from None
            if len(secret) != KEY_BYTES:
                raise CodecKeysError(
                    f"{source}: key '{key_id}' is {len(secret)} bytes; AES-256 needs {KEY_BYTES}"
                )
            keys.append(CodecKey(key_id, secret))
        if not keys:
            raise CodecKeysError(f"{source}: no key in it")
        try:
            return cls(tuple(keys))
        except CodecKeysError as error:
            raise CodecKeysError(f"{source}: {error}") from None

    @classmethod
    def from_file(cls, path: Path) -> CodecKeys:
        try:
            text = path.read_text()
        except OSError as error:
            raise CodecKeysError(f"cannot read the codec key file {path}: {error}") from None
        return cls.parse(text, str(path))

    def rotated(self, new: CodecKey) -> CodecKeys:
        """These keys with `new` as the current one."""
        return CodecKeys((new, *self.keys))


def new_key(key_id: str | None = None) -> CodecKey:
    """A fresh random key; its id defaults to the date and a random suffix."""
    key_id = key_id or f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"
    if not KEY_ID.fullmatch(key_id):
        raise CodecKeysError(f"'{key_id}' is not a key id: letters, digits, '.', '_', '-'")
    return CodecKey(key_id, secrets.token_bytes(KEY_BYTES))


def write_key_file(path: Path, keys: CodecKeys) -> None:
    """Write `keys` to `path`, readable by its owner only from the first byte on."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(
            "# o2c payload codec keys: the first encrypts, every one decrypts (docs/security.md)\n"
        )
        file.write("".join(key.line() + "\n" for key in keys.keys))
    os.replace(partial, path)
