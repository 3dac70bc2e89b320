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
    from o2c_service.codec.server import create_codec_app
    from o2c_service.runners import serve_app, stop_on_signals

    settings = Settings()
    try:
        settings.codec()
    except CodecKeysError as error:
        fail(str(error))

    async def main() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        app = create_codec_app(settings)
        await serve_app(app, settings.codec_host, settings.codec_port, stop)

    asyncio.run(main())


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
