"""Background loops count their failures, keep going, and stop at once when cancelled."""

from __future__ import annotations

import asyncio

import pytest

from fluxnode.core.errors import ChainUnavailable
from fluxnode.node.loops import Loops


async def test_failures_and_crashes_are_counted_and_the_loop_goes_on() -> None:
    loops = Loops(clock=lambda: 1234.0)
    outcomes: list[BaseException | None] = [ChainUnavailable("down"), KeyError("bug"), None]
    done = asyncio.Event()

    async def step() -> None:
        if not outcomes:  # every outcome was played: park in the fourth round
            done.set()
            await asyncio.Event().wait()
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    task = asyncio.create_task(loops.run_forever("chain", step, 0.0))
    await asyncio.wait_for(done.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = loops.statistics()["chain"]
    assert stats["rounds"] == 4
    assert stats["failures"] == 1
    assert stats["crashes"] == 1
    assert stats["last_error"] == "KeyError: 'bug'"
    assert stats["last_failure_at"] == 1234.0


async def test_cancellation_inside_a_round_is_not_swallowed() -> None:
    loops = Loops()
    started = asyncio.Event()

    async def step() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(loops.run_forever("hosting", step, 0.0))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert loops.statistics()["hosting"]["failures"] == 0
    assert loops.statistics()["hosting"]["crashes"] == 0
