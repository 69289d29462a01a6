"""The per-key request rate and the failed-authentication throttle on the API's hot path:
a key's hits come from leases counted down in memory, and a clear address is not asked about
again for a second, without giving up what each limit promises."""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import pytest
from fastapi import HTTPException

from tass.api.auth import AuthFailureThrottle, RateLimiter


def allowed(limiters: list[RateLimiter], key_id: int, rounds: int) -> int:
    """How many of `rounds` requests through each limiter in turn were let through."""

    async def requests() -> int:
        return sum([await limiter.allow(key_id) for _ in range(rounds) for limiter in limiters])

    return asyncio.run(requests())


def test_leases_give_a_key_exactly_its_limit():
    limiter = RateLimiter("1000/minute", "memory://")
    assert limiter.lease_size == 10

    assert allowed([limiter], 7, 1100) == 1000


def test_two_processes_leasing_from_one_window_never_let_a_key_past_its_limit(redis_url):
    first, second = RateLimiter("1000/minute", redis_url), RateLimiter("1000/minute", redis_url)
    key_id = random.randrange(10**9, 10**12)  # a key no other test has used in this window

    let_through = allowed([first, second], key_id, 600)

    assert let_through <= 1000, "the two processes together let the key past its limit"
    assert let_through >= 1000 - 2 * first.lease_size, "more than a lease per process was lost"


def test_a_burst_takes_one_lease_not_one_each():
    limiter = RateLimiter("10000/minute", "memory://")
    storage_hit = limiter.strategy.hit

    def slow_storage(*args, **kwargs):  # a Redis round trip, long enough for the burst to meet
        time.sleep(0.05)
        return storage_hit(*args, **kwargs)

    limiter.strategy.hit = slow_storage  # type: ignore[method-assign]

    async def burst() -> list[bool]:
        return list(await asyncio.gather(*(limiter.allow(3) for _ in range(16))))

    assert asyncio.run(burst()) == [True] * 16
    _, remaining = limiter.strategy.get_window_stats(limiter.item, limiter.NAMESPACE, "3")
    assert remaining == 10000 - limiter.lease_size


def test_near_the_limit_the_last_hits_that_fit_are_not_lost_to_a_lease():
    limiter = RateLimiter("201/minute", "memory://")  # leases of 2: the 201st hit fits alone

    assert allowed([limiter], 11, 205) == 201


def counting_storage_tests(throttle: AuthFailureThrottle) -> list[str]:
    asked: list[str] = []
    test = throttle.strategy.test

    def counted(item, namespace, address):  # type: ignore[no-untyped-def]
        asked.append(address)
        return test(item, namespace, address)

    throttle.strategy.test = counted  # type: ignore[method-assign]
    return asked


def test_a_clear_address_is_not_asked_about_again_and_a_block_elsewhere_applies_within_a_second(
    redis_url,
):
    here = AuthFailureThrottle("3/minute", redis_url)
    elsewhere = AuthFailureThrottle("3/minute", redis_url)
    here.CLEAR_SECONDS = 0.3
    address = f"198.51.100.{random.randrange(256)}-{uuid.uuid4().hex[:6]}"
    asked = counting_storage_tests(here)

    async def scenario() -> None:
        await here.check(address)
        await here.check(address)
        assert len(asked) == 1, "a clear address was asked about twice within CLEAR_SECONDS"
        for _ in range(3):
            elsewhere.record_failure(address)
        await asyncio.sleep(0.35)
        with pytest.raises(HTTPException) as refused:
            await here.check(address)
        assert refused.value.status_code == 429

    asyncio.run(scenario())


def test_a_failure_in_this_process_ends_the_trust_at_once():
    throttle = AuthFailureThrottle("3/minute", "memory://")

    async def scenario() -> None:
        await throttle.check("203.0.113.9")
        for _ in range(3):
            throttle.record_failure("203.0.113.9")
        with pytest.raises(HTTPException) as refused:
            await throttle.check("203.0.113.9")
        assert refused.value.status_code == 429

    asyncio.run(scenario())


def test_a_steady_client_is_rechecked_in_the_background_and_never_waits():
    throttle = AuthFailureThrottle("3/minute", "memory://")
    throttle.CLEAR_SECONDS = 0.4
    asked = counting_storage_tests(throttle)

    async def scenario() -> None:
        started = time.monotonic()
        await throttle.check("203.0.113.10")  # asks the storage: nothing known yet
        await asyncio.sleep(0.25)  # past half of CLEAR_SECONDS
        await throttle.check("203.0.113.10")  # answers at once, renews in the background
        await asyncio.sleep(0.05)
        assert len(asked) == 2, "the renewal did not run"
        await asyncio.sleep(max(0.0, started + 0.45 - time.monotonic()))  # first trust ended
        await throttle.check("203.0.113.10")
        assert len(asked) == 2, "the renewed trust was not used"

    asyncio.run(scenario())
