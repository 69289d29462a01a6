"""The read cache's single flight never trades freshness for fewer reads: a request that
arrives after a change never gets an answer read before it."""

from __future__ import annotations

import asyncio
import threading

from tass.core.change_feed import ChangeFeed


def live_feed() -> ChangeFeed:
    feed = ChangeFeed()
    feed.cache.clear(live=True)  # as a feed does once it sees every change
    return feed


def test_a_request_after_a_change_does_not_join_a_read_from_before_it():
    feed = live_feed()
    released = threading.Event()
    answers = iter(["before the change", "after the change"])

    def read() -> str:
        answer = next(answers)
        if answer == "before the change":
            released.wait(5)  # still running when the change lands
        return answer

    async def scenario() -> tuple[str | None, str | None]:
        early = asyncio.ensure_future(feed.read_through(("job", "j1"), read))
        await asyncio.sleep(0.05)
        feed.cache.drop(("job", "j1"))  # the job changed (a notification, a commit here)
        late = await feed.read_through(("job", "j1"), read)
        released.set()
        return await early, late

    early, late = asyncio.run(scenario())

    assert (early, late) == ("before the change", "after the change")
    assert feed.get(("job", "j1")) == "after the change", "the stale read was stored"


def test_requests_that_miss_together_share_one_read():
    feed = live_feed()
    reads: list[int] = []

    def read() -> str:
        reads.append(1)
        threading.Event().wait(0.05)
        return "status"

    async def crowd() -> list[str | None]:
        return list(await asyncio.gather(*(feed.read_through("k", read) for _ in range(10))))

    assert asyncio.run(crowd()) == ["status"] * 10
    assert len(reads) == 1


def test_a_change_made_here_drops_every_answer_at_once():
    feed = live_feed()
    feed.put(("job", "j1"), "queued", feed.epoch)
    assert feed.get(("job", "j1")) == "queued"

    feed.changed_here()

    assert feed.get(("job", "j1")) is None
