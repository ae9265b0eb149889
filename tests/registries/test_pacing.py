"""The allowance of requests to one registry: in flight, paused, and paced after a 429."""

from __future__ import annotations

import asyncio

import pytest

from dockyard.registries.pacing import BELOW, GROWTH, MIN_SAMPLE, Allowance


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_no_more_than_the_limit_are_in_flight() -> None:
    async def scenario() -> int:
        allowance = Allowance(3)
        most = 0

        async def one() -> None:
            nonlocal most
            async with allowance:
                most = max(most, allowance.in_flight)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(one() for _ in range(20)))
        assert allowance.in_flight == 0
        return most

    assert asyncio.run(scenario()) == 3


def test_after_a_429_requests_wait_the_pause_then_keep_below_the_rate_accepted() -> None:
    time = FakeTime()

    async def scenario() -> None:
        allowance = Allowance(32, clock=time.clock, sleep=time.sleep)
        for _ in range(100):  # the registry accepted 100 in the last second
            time.now += 0.01
            allowance.answered()
        allowance.pause(2.0)
        assert allowance.rate == pytest.approx(BELOW * 100 / 2.0)
        allowance.pause(2.0)  # the others in flight meet the same limit: measured once
        assert allowance.rate == pytest.approx(BELOW * 50)
        for _ in range(3):
            async with allowance:
                pass

    asyncio.run(scenario())
    first, *spaced = time.slept
    assert first == pytest.approx(2.0)
    assert spaced == [pytest.approx(1 / 45, abs=1e-5)] * 2


def test_the_pace_grows_back_while_nothing_is_refused() -> None:
    time = FakeTime()
    allowance = Allowance(8, clock=time.clock, sleep=time.sleep)
    for _ in range(10):
        allowance.answered()
    allowance.pause(1.0)
    assert allowance.rate == pytest.approx(9.0)
    time.now += 5
    for _ in range(9):
        allowance.answered()
    assert allowance.rate == pytest.approx(9.0 * GROWTH)


def test_a_429_after_too_few_answers_pauses_without_guessing_a_rate() -> None:
    time = FakeTime()
    allowance = Allowance(8, clock=time.clock, sleep=time.sleep)
    for _ in range(MIN_SAMPLE - 1):
        allowance.answered()
    allowance.pause(3.0)
    assert allowance.rate is None
    assert allowance.rest() == pytest.approx(3.0)


def test_a_request_cancelled_while_it_waits_gives_its_turn_back() -> None:
    async def scenario() -> int:
        allowance = Allowance(1)
        allowance.paused_until = 1e18  # paused far away: the request waits in its turn

        async def one() -> None:
            async with allowance:
                pass

        task = asyncio.create_task(one())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return allowance.in_flight

    assert asyncio.run(scenario()) == 0
