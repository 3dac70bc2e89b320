"""`o2c bench --profile FILE`: where the worker spends its CPU during the orders.

py-spy samples the worker process from outside (`py-spy record --pid`, raw
collapsed stacks written to FILE) for the duration of the orders phase; the bench
then adds up the stacks itself: a function's *own* samples are those with it on
top of the stack, its *total* those with it anywhere in the stack.

Only samples of the thread holding the GIL are taken (`--gil`): the worker is one
interpreter, so its Python work is serialized on the GIL, and the samples add up
to the time the GIL was held. Without it, threads waiting for work (the SDK's
workflow-task threads in `queue.get`, the event loop in `epoll`) were counted as
running and filled most of the top. What runs without the GIL is left out: the
SDK's Rust core, SQLite executing a statement, socket writes.

py-spy needs to read another process's memory (ptrace). Where it cannot (a
container without CAP_SYS_PTRACE, a strict `kernel.yama.ptrace_scope`), the bench
says so and runs the worker under cProfile instead (`python -m o2c_bench.worker
--cprofile FILE`): every thread of the worker is profiled from its start to its
exit, warm-up and floor included, and FILE holds the pstats dump. Setting
O2C_BENCH_PROFILER=cprofile chooses cProfile even where py-spy works.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pstats
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Literal

from o2c_bench.env import BenchError
from o2c_bench.report import ProfiledFunction, ProfileFigures

TOP = 15
SAMPLE_RATE = 100
"""Samples per second, py-spy's default."""
START_TIMEOUT = 10.0
STOP_TIMEOUT = 60.0
PROFILER_VARIABLE = "O2C_BENCH_PROFILER"

Tool = Literal["py-spy", "cProfile"]

_FRAME = re.compile(r"^(?P<function>.*) \((?P<location>[^()]*)\)$")


class ProfileError(BenchError):
    """The profiler could not run; the message says why."""


def py_spy() -> str | None:
    """The py-spy executable: beside this Python (the project's venv), else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def py_spy_unusable() -> str | None:
    """Why py-spy cannot sample a process here, or None when it can.

    Tried on a throwaway Python process, before the worker starts, so that the
    worker can still be started under cProfile instead.
    """
    executable = py_spy()
    if executable is None:
        return "py-spy is not installed (it comes with the project's test extra)"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.3)  # let the interpreter start
        done = subprocess.run(
            [executable, "dump", "--pid", str(sleeper.pid)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return f"py-spy did not run: {error}"
    finally:
        sleeper.kill()
        sleeper.wait()
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        return f"py-spy cannot attach to a process here: {said[-1] if said else done.returncode}"
    return None


def choose_tool() -> tuple[Tool, str | None]:
    """py-spy if it works here, else cProfile; and why not py-spy, if not."""
    if os.environ.get(PROFILER_VARIABLE, "").lower() == "cprofile":
        return "cProfile", f"{PROFILER_VARIABLE}=cprofile"
    why = py_spy_unusable()
    return ("cProfile", why) if why else ("py-spy", None)


@contextlib.asynccontextmanager
async def py_spy_recording(pid: int, output: Path, log: Path) -> AsyncIterator[None]:
    """Sample process `pid` while the block runs; raw collapsed stacks go to `output`."""
    executable = py_spy()
    if executable is None:
        raise ProfileError("py-spy is not installed")
    _make_room(output)
    with log.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            executable, "record", "--pid", str(pid), "--format", "raw", "--function",
            "--rate", str(SAMPLE_RATE), "--gil", "--output", str(output),
            stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        await _sampling(process, log)
        yield
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
    if not _written(output):
        raise ProfileError(f"py-spy wrote nothing to {output}: {_tail(log)}")


def _make_room(output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)


def _written(output: Path) -> bool:
    return output.exists()


async def _sampling(process: asyncio.subprocess.Process, log: Path) -> None:
    """Return once py-spy says it samples; fail if it exits first."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if "Sampling process" in _tail(log):
            return
        if process.returncode is not None:
            raise ProfileError(f"py-spy exited with {process.returncode}: {_tail(log)}")
        await asyncio.sleep(0.05)
    raise ProfileError(f"py-spy did not start sampling within {START_TIMEOUT:.0f} s")


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace").strip()[-2000:]
    except OSError:
        return ""


def collapsed_stacks(lines: Iterable[str]) -> Counter[tuple[str, ...]]:
    """`frame;frame;frame count` lines (py-spy's raw format, root first) as stack counts."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def top_functions(stacks: Counter[tuple[str, ...]], top: int = TOP) -> ProfileFigures:
    """The functions with the most own samples, with their total samples beside.

    Own: samples with the function on top of the stack. Total: samples with it
    anywhere in the stack, counted once per sample however deep it recurses.
    """
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for stack, count in stacks.items():
        own[stack[-1]] += count
        for frame in set(stack):
            total[frame] += count
    samples = sum(stacks.values())
    return ProfileFigures(
        tool="py-spy",
        file="",
        scope="orders phase",
        unit="samples",
        total=samples,
        top=[
            _function(frame, count, total[frame], samples)
            for frame, count in sorted(own.items(), key=lambda item: (-item[1], item[0]))[:top]
        ],
    )


def _function(frame: str, own: float, total: float, of: float) -> ProfiledFunction:
    match = _FRAME.match(frame)
    function, location = (match["function"], match["location"]) if match else (frame, "")
    return ProfiledFunction(
        function=function,
        location=location,
        own=round(own, 4),
        total=round(total, 4),
        own_pct=round(100 * own / of, 1) if of else 0.0,
        total_pct=round(100 * total / of, 1) if of else 0.0,
    )


def py_spy_figures(output: Path, top: int = TOP) -> ProfileFigures:
    with output.open() as lines:
        figures = top_functions(collapsed_stacks(lines), top)
    return figures.model_copy(update={"file": str(output)})


def _short(file: str) -> str:
    """The file's folder and name, as py-spy shortens them."""
    return "/".join(Path(file).parts[-2:])


def cprofile_figures(output: Path, top: int = TOP) -> ProfileFigures:
    """The worker's pstats dump, its functions ordered by own time (`tottime`)."""
    if not output.exists():
        raise ProfileError(f"the worker wrote no cProfile dump to {output}")
    stats = pstats.Stats(str(output)).stats  # type: ignore[attr-defined]
    rows: list[tuple[str, str, float, float]] = [
        (name, "built-in" if file == "~" else f"{_short(file)}:{line}", own, cumulative)
        for (file, line, name), (_, _, own, cumulative, _) in stats.items()
    ]
    seconds = sum(row[2] for row in rows)
    rows.sort(key=lambda row: -row[2])
    return ProfileFigures(
        tool="cProfile",
        file=str(output),
        scope="the worker's whole run, CPU time of every thread, warm-up and floor included",
        unit="seconds",
        total=round(seconds, 3),
        top=[
            ProfiledFunction(
                function=name,
                location=where,
                own=round(own, 4),
                total=round(cumulative, 4),
                own_pct=round(100 * own / seconds, 1) if seconds else 0.0,
                total_pct=round(100 * cumulative / seconds, 1) if seconds else 0.0,
            )
            for name, where, own, cumulative in rows[:top]
        ],
    )
