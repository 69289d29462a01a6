"""Webhook retry delays: the first retry within 10 s, then doubling with jitter, capped."""

from __future__ import annotations

from tass.core.webhooks import MAX_RETRY_DELAY_SECONDS, retry_delay


def test_first_retry_comes_within_ten_seconds_and_later_ones_grow() -> None:
    for _ in range(200):
        assert 2.5 <= retry_delay(1, 5.0) <= 5.0
        assert 40.0 <= retry_delay(5, 5.0) <= 80.0
        assert MAX_RETRY_DELAY_SECONDS / 2 <= retry_delay(40, 5.0) <= MAX_RETRY_DELAY_SECONDS


def test_delays_are_jittered() -> None:
    assert len({retry_delay(3, 5.0) for _ in range(50)}) > 40


def test_retries_over_a_day_add_up_to_about_a_day() -> None:
    """With the defaults an event is tried about 30 times in its day, not thousands."""
    waited, attempts = 0.0, 0
    while waited < 24 * 3600:
        attempts += 1
        waited += retry_delay(attempts, 5.0)
    assert 20 <= attempts <= 60
