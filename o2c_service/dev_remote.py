"""`o2c dev --remote`: the sandbox in the same process, and the worker and the API calling it.

The sandbox serves the four systems' contracts over HTTP on O2C_SANDBOX_PORT and the
next three ports, over the same O2C_DATABASE_URL the embedded systems would use, so
orders go through the HTTP adapters and their calls run as normal activities (visible
in the Temporal UI), while everything still runs from one command.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from o2c_domain.systems import SYSTEMS
from o2c_sandbox.routes import CALLS_PATH
from o2c_sandbox.serve import serve_sandbox
from o2c_service.settings import Settings


def point_at_sandbox(settings: Settings) -> Settings:
    """`settings` with every system that has no URL of the user's called at the sandbox.
    A URL the user gave wins: that system is called there, and its sandbox port idles."""
    urls = settings.sandbox_urls()
    unset = {f"{system}_url": urls[system] for system in SYSTEMS if not settings.system_url(system)}
    return settings.model_copy(update=unset)


def sandbox_banner(settings: Settings) -> str:
    """The banner's lines on the sandbox: each system's URL, and where its requests show."""
    text = ""
    urls = settings.sandbox_urls()
    for number, system in enumerate(SYSTEMS):
        label = "Sandbox" if number == 0 else ""
        url, used = urls[system], settings.system_url(system)
        elsewhere = f"   (unused: O2C_{system.upper()}_URL is {used})" if used != url else ""
        text += f"  {label:<13} {system:<12} {url}{elsewhere}\n"
    return text + (
        "                each request is logged here (logger o2c.sandbox) and listed at "
        f"<url>{CALLS_PATH}\n"
    )


@asynccontextmanager
async def sandbox_serving(settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    """The sandbox, listening on all four ports, for the length of the block; yields its
    task (done early only if it failed) and stops it at the end of the block."""
    stop = asyncio.Event()
    listening = asyncio.Event()
    serving = asyncio.create_task(serve_sandbox(settings, stop, listening), name="sandbox")
    ready = asyncio.create_task(listening.wait())
    await asyncio.wait([ready, serving], return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        serving.result()  # its error, if it failed
        first = settings.sandbox_port
        raise RuntimeError(
            f"the sandbox stopped before it listened on {settings.sandbox_host} ports "
            f"{first}..{first + 3} (O2C_SANDBOX_PORT)"
        )
    try:
        yield serving
    finally:
        stop.set()
        await serving
