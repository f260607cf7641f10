"""The sign-in throttle over the shared store: per source address and per email, lockouts that double, a success
that forgets the email's failures (not the address's)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.gateway.service.rate_limits import LoginPolicy, RateLimited, SharedLoginThrottle
from tests.unit.services.gateway.fakes import FakeRateLimits


async def fail_times(throttle: SharedLoginThrottle, source: str, email: str, times: int) -> None:
    for _ in range(times):
        await throttle.check(source, email)
        await throttle.failed(source, email)


async def test_five_failures_from_one_address_lock_it_out_with_a_doubling_retry_after():
    store = FakeRateLimits()
    throttle = SharedLoginThrottle(store)
    await fail_times(throttle, "203.0.113.7", "a@example.com", 5)
    with pytest.raises(RateLimited) as refused:
        await throttle.check("203.0.113.7", "b@example.com")  # another account from the same address
    assert refused.value.decision.retry_after == timedelta(minutes=3)
    await throttle.check("198.51.100.1", "b@example.com")  # another address, another account: fine

    store.now += timedelta(minutes=3)
    await fail_times(throttle, "203.0.113.7", "c@example.com", 1)
    with pytest.raises(RateLimited) as refused:
        await throttle.check("203.0.113.7", "c@example.com")
    assert refused.value.decision.retry_after == timedelta(minutes=6)


async def test_a_distributed_guess_at_one_account_is_stopped_and_a_success_resets_the_account():
    store = FakeRateLimits()
    throttle = SharedLoginThrottle(store)
    for n in range(5):
        await fail_times(throttle, f"192.0.2.{n}", "Victim@Example.com", 1)
    with pytest.raises(RateLimited):
        await throttle.check("192.0.2.99", "victim@example.com")
    store.now += timedelta(minutes=3)
    await throttle.check("192.0.2.99", "victim@example.com")
    await throttle.succeeded("192.0.2.99", "victim@example.com")
    await fail_times(throttle, "192.0.2.100", "victim@example.com", 4)  # a fresh budget for the account


async def test_a_success_does_not_clear_the_address():
    store = FakeRateLimits()
    throttle = SharedLoginThrottle(store, LoginPolicy(failures=2))
    await fail_times(throttle, "203.0.113.9", "x@example.com", 2)
    await throttle.succeeded("203.0.113.9", "mine@example.com")
    with pytest.raises(RateLimited):
        await throttle.check("203.0.113.9", "mine@example.com")
