"""The README's shell blocks, pasted in order into a terminal next to a fresh `o2c dev`.

Each ```sh block runs in bash, in order, in one scratch folder (later blocks use
the files earlier ones wrote), with `o2c` and `temporal` on PATH and pointed at
the test's own `o2c dev` (its ports stand in for the documented defaults). A
block must exit 0 with every command in it succeeding (`set -e`; curl fails on
an HTTP error), and the orders must end where the README says they do.

Not run: the set-up commands (`scripts/dev`, `scripts/test`: the test is
already inside them) and blocks marked `<!-- not run: reason -->` just above,
whose reason names the test that covers them instead.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.integration.test_dev_command import DevProcess, o2c_dev

README = Path(__file__).parents[2] / "README.md"
SET_UP = frozenset({"scripts/dev", "scripts/test"})
NOT_RUN = re.compile(r"^<!-- not run: (?P<reason>.+) -->$")
DEFAULT_API = "http://127.0.0.1:8000"
BLOCK_TIMEOUT = 180
PRELUDE = """set -eo pipefail
curl() { command curl --fail-with-body --show-error "$@"; }
trap 'printf %s "${O2C_API_KEY-}" > "$KEPT_API_KEY"' EXIT
"""
"""What a person would notice at once: a command that failed, or curl answered with an error.
The terminal keeps what a block exported: O2C_API_KEY, once the quick start has set it."""


@dataclass(frozen=True)
class Block:
    line: int
    text: str
    not_run: str | None

    @property
    def runs(self) -> bool:
        return self.not_run is None and self.text.strip() not in SET_UP


def shell_blocks(markdown: str) -> list[Block]:
    """Every ```sh block, with the `not run` reason on the line above it, if any."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() != "```sh":
            index += 1
            continue
        start = index
        end = lines.index("```", start + 1)
        marker = NOT_RUN.match(lines[start - 1].strip()) if start > 0 else None
        text = "\n".join(lines[start + 1 : end]) + "\n"
        blocks.append(Block(start + 1, text, marker["reason"] if marker else None))
        index = end + 1
    return blocks


def test_every_block_runs_or_says_which_test_covers_it() -> None:
    blocks = shell_blocks(README.read_text())
    assert [b.text.strip() for b in blocks if not b.runs and b.not_run is None] == [
        "scripts/dev",
        "scripts/test",
    ]
    for block in blocks:
        if block.not_run is not None:
            named = re.findall(r"tests/[\w/]+\.py", block.not_run)
            assert named, f"README line {block.line}: say which test covers it"
            for test in named:
                assert (README.parent / test).is_file(), f"README line {block.line}: {test}"
    assert len([b for b in blocks if b.runs]) >= 6


async def order(http: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await http.get(f"/orders/{order_id}")
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


async def test_the_readme_blocks_work_pasted_in_order(tmp_path: Path) -> None:
    async with o2c_dev(tmp_path / "o2c") as dev:
        walked = await paste_the_readme(dev, tmp_path)
        await check_the_orders_end_as_the_readme_says(dev, walked)


@dataclass(frozen=True)
class Walked:
    """What the terminal showed after pasting the README."""

    printed: list[str]
    """Each block's standard output, in order."""
    api_key: str | None
    """O2C_API_KEY as the blocks left it exported."""


async def paste_the_readme(dev: DevProcess, tmp_path: Path) -> Walked:
    """Every block that runs, pasted in order into one terminal (a scratch folder under
    `tmp_path`) next to `dev`; each must succeed."""
    blocks = [block for block in shell_blocks(README.read_text()) if block.runs]
    work = tmp_path / "terminal"
    work.mkdir()
    kept = tmp_path / "kept-api-key"
    # The terminal is in the project folder, where `scripts/dev` keeps its data (.o2c).
    (work / ".o2c").symlink_to(dev.env["O2C_DATA_DIR"], target_is_directory=True)
    env = dev.env | {
        # `source .venv/bin/activate`: o2c and temporal on PATH
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TEMPORAL_ADDRESS": dev.env["O2C_TEMPORAL_ADDRESS"],
        "COLUMNS": "200",
        "KEPT_API_KEY": str(kept),
    }
    printed: list[str] = []
    for block in blocks:
        if kept.exists() and kept.read_text():
            env["O2C_API_KEY"] = kept.read_text()
        process = await asyncio.create_subprocess_exec(
            "bash", "-c", PRELUDE + block.text.replace(DEFAULT_API, dev.api),
            cwd=work, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), BLOCK_TIMEOUT)
        assert process.returncode == 0, (
            f"README line {block.line} failed ({process.returncode}):\n{block.text}\n"
            f"stdout:\n{out.decode()}\nstderr:\n{err.decode()}"
        )
        printed.append(out.decode())
    return Walked(printed, env.get("O2C_API_KEY"))


async def check_the_orders_end_as_the_readme_says(dev: DevProcess, walked: Walked) -> None:
    """Each order ended where the README says it does, and the terminal showed it so."""
    printed = walked.printed
    bulk = next(out for out in reversed(printed) if "retry:" in out)
    for done in ("retry: 1 of 1 orders", "release: 1 of 1 orders", "cancel: 1 of 1 orders"):
        assert done in bulk, bulk
    quick_start = printed[0]
    assert '"order_id":"webshop:SO-1001","status":"Booked","created":true' in quick_start
    assert walked.api_key == dev.key(), "the quick start exports the support key"
    async with dev.http() as http:
        cli = await order(http, "webshop:SO-1001")
        assert cli["status"] == "Closed"
        assert [p["payment_id"] for p in cli["payments"]] == ["BANK-7781", "BANK-7790"]
        assert [i["balance"] for i in cli["invoices"]] == ["0.00"]

        over_http = await order(http, "webshop:SO-1002")
        assert over_http["status"] == "Closed"
        assert [p["payment_id"] for p in over_http["payments"]] == ["BANK-7801"]

        # Shipped by the 3PL's signed webhook, paid by the gateway's; the retry did nothing.
        webhooks = await order(http, "webshop:SO-1004")
        assert webhooks["status"] == "Closed"
        assert [d["tracking_number"] for d in webhooks["dispatches"]] == ["JD014600005"]
        assert [p["payment_id"] for p in webhooks["payments"]] == ["pay_7781"]
        sent = next(out for out in printed if "msg_gw_0001" in out)
        retried = sent.strip().splitlines()[-1]
        assert '"webhook_id":"msg_gw_0001"' in retried and '"replayed":true' in retried

        net30 = await order(http, "webshop:SO-2001")
        assert net30["status"] == "Closed"
        assert [(i["amount"], i["balance"]) for i in net30["invoices"]] == [
            ("324.98", "0.00"),
            ("249.00", "0.00"),
        ]
        assert [p["payment_id"] for p in net30["payments"]] == ["BANK-2001-1", "BANK-2001-2"]

        signalled = await order(http, "webshop:SO-1003")
        assert signalled["status"] == "Invoiced"
        assert [d["tracking_number"] for d in signalled["dispatches"]] == ["1Z999"]

        # Retried twice (once alone, once in bulk), parked again: still 5 in stock.
        assert await status_within(http, "webshop:SO-3001", "OnHold", BLOCK_TIMEOUT)
        still_short = await order(http, "webshop:SO-3001")
        assert still_short["hold"]["code"] == "out_of_stock"
        notes = [entry["note"] for entry in still_short["timeline"]]
        assert "retry: stock checked" in notes
        for released in ("webshop:SO-3002", "webshop:SO-3004"):
            assert await status_within(http, released, "Booked", BLOCK_TIMEOUT)
        for cancelled, reason in (("webshop:SO-3003", "customer withdrew"),
                                  ("webshop:SO-3005", "item discontinued")):  # fmt: skip
            assert await status_within(http, cancelled, "Cancelled", BLOCK_TIMEOUT)
            assert (await order(http, cancelled))["cancellation_reason"] == reason


async def status_within(
    http: httpx.AsyncClient, order_id: str, status: str, seconds: float
) -> bool:
    """Whether the order reaches `status` within `seconds` (it moves on after a release)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while (await order(http, order_id))["status"] != status:
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True
