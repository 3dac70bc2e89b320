"""`o2c codec-server` and `o2c codec-key`: the payload codec's server and its keys
(docs/security.md)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from o2c_service.cli.common import app, fail, out
from o2c_service.codec.keys import CodecKeysError, new_key
from o2c_service.settings import Settings


@app.command("codec-server")
def codec_server() -> None:
    """Serve the codec routes alone (O2C_CODEC_HOST:O2C_CODEC_PORT), for the Temporal UI and CLI."""
    import uvicorn

    from o2c_service.codec.server import create_codec_app

    settings = Settings()
    try:
        settings.codec()
    except CodecKeysError as error:
        fail(str(error))
    config = uvicorn.Config(
        create_codec_app(settings), host=settings.codec_host, port=settings.codec_port
    )
    asyncio.run(uvicorn.Server(config).serve())


@app.command("codec-key")
def codec_key(
    key_id: Annotated[
        str | None, typer.Option("--id", help="The key's id (default: k<date>-<random>).")
    ] = None,
) -> None:
    """Print a new random codec key, `id=<base64>`: put it first in O2C_CODEC_KEYS or the key
    file to make it current (rotation); keep the old ones after it."""
    try:
        key = new_key(key_id)
    except CodecKeysError as error:
        fail(str(error))
    out.print(key.line(), highlight=False, markup=False, soft_wrap=True)
