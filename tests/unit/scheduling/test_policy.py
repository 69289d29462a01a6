"""Each rule of the scheduling policy as a small scenario on fabricated snapshots."""

from __future__ import annotations

import random

import pytest

from tass.core.scheduling import (
    Resources,
    Snapshot,
    Tenant,
    WaitingQueue,
    Worker,
    accrue,
    check_request,
    request_fits,
)
from tests.unit.scheduling.builders import (
    HIGH,
    LOW,
    NORMAL,
    URGENT,
    job,
    placed,
    reason,
    run,
    running,
    snapshot,
    worker,
)

CPU = {"gpu": False}


def test_a_later_tenants_single_job_starts_before_the_first_tenants_remaining_jobs() -> None:
    """Tenant A submits 20 jobs, B one a minute later, on 2 CPU workers x 2 slots: B's job is
    next as soon as one slot frees, not after all of A's."""
    workers = [worker("w1", 2, pool="cpu", **CPU), worker("w2", 2, pool="cpu", **CPU)]
    a_jobs = [job(f"a{i:02d}", "A", gpus=0, pool="cpu", at=i) for i in range(20)]
    first = run(snapshot(workers, a_jobs), now=30)
    assert placed(first) == ["a00", "a01", "a02", "a03"]

    busy = [
        running(p.job_id, p.allocations[0].worker_id, p.allocations[0].devices, "A", pool="cpu")
        for p in first.placements
    ]
    rest = [*a_jobs[4:], job("b0", "B", gpus=0, pool="cpu", at=60)]
    full = [worker("w1", 2, busy=[0, 1], pool="cpu", **CPU), worker("w2", 2, [0, 1], "cpu", **CPU)]
    waiting = run(snapshot(full, rest, busy), now=61)
    assert placed(waiting) == []
    assert waiting.status("b0").queue_position == 1  # type: ignore[union-attr]  # waits
    assert waiting.status("a04").queue_position == 2  # type: ignore[union-attr]  # waits

    one_free = [worker("w1", 2, busy=[1], pool="cpu", **CPU), full[1]]
    later = run(snapshot(one_free, rest, busy[1:]), now=120)
    assert placed(later) == ["b0"]
    assert later.status("a04").queue_position == 1  # type: ignore[union-attr]  # still waits


def test_higher_class_goes_first_then_lower_usage_per_weight_then_submit_time() -> None:
    jobs = [
        job("old-normal", "A", NORMAL, at=0),
        job("new-high", "A", HIGH, at=50),
        job("heavy-user", "B", NORMAL, at=1),
        job("light-user", "C", NORMAL, at=40),
        job("weighted", "D", NORMAL, at=30),
    ]
    usage = {("A", "a100"): 100.0, ("B", "a100"): 900.0, ("C", "a100"): 10.0}
    usage[("D", "a100")] = 150.0  # weight 2: 75 per unit of weight, before A's 100
    snap = snapshot([worker("w1", 1, busy=[0])], jobs, tenants=[Tenant("D", weight=2)], usage=usage)
    order = [s.job_id for s in run(snap).waiting()]
    assert order == ["new-high", "light-user", "weighted", "old-normal", "heavy-user"]


def test_urgent_preempts_low_but_normal_takes_free_capacity_instead_of_preempting() -> None:
    workers = [worker("w1", 2, busy=[0, 1]), worker("w2", 2, busy=[0])]
    lows = [
        running("low1", "w1", [0], "B", LOW, started=10),
        running("low2", "w1", [1], "B", LOW, started=20),
        running("low3", "w2", [0], "B", LOW, started=30),
    ]
    normal = run(snapshot(workers, [job("n", "A", NORMAL, since=0)], lows), now=5000)
    assert placed(normal) == ["n"]
    assert normal.preemptions == ()

    urgent_jobs = [job("u", "A", URGENT, gpus=2, since=999)]
    urgent = run(snapshot(workers, urgent_jobs, lows), now=1000)
    assert placed(urgent) == []
    # w2 needs one victim (w1 two); the one that started last loses least work.
    assert [(p.victim_id, p.for_job_id) for p in urgent.preemptions] == [("low3", "u")]
    assert reason(urgent, "u") == "preempting 1 lower-priority job in pool a100 to make room"

    # Next cycle the victim is checkpointing: nobody else is preempted, the room is held.
    stopping = [*lows[:2], running("low3", "w2", [0], "B", LOW, started=30, stopping=True)]
    fresh = job("n2", "C", gpus=1, at=1005)  # within its grace: it preempts nobody
    again = run(snapshot(workers, [*urgent_jobs, fresh], stopping), now=1010)
    assert again.preemptions == ()
    assert placed(again) == []
    assert "checkpoint" in reason(again, "u")


def test_only_a_higher_class_preempts_and_only_after_its_grace() -> None:
    full = [worker("w1", 1, busy=[0])]
    peers = [running("n-running", "w1", [0], "B", NORMAL)]
    same_class = run(snapshot(full, [job("n", "A", NORMAL, since=0)], peers), now=10**6)
    assert same_class.preemptions == ()

    lows = [running("low", "w1", [0], "B", LOW)]
    early = run(snapshot(full, [job("n", "A", NORMAL, since=900)], lows), now=1000)
    assert early.preemptions == ()  # normal's grace (600 s) not yet over
    late = run(snapshot(full, [job("n", "A", NORMAL, since=0)], lows), now=1000)
    assert [p.victim_id for p in late.preemptions] == ["low"]


def test_victims_are_the_lowest_class_then_the_tenant_furthest_over_its_share() -> None:
    workers = [worker("w1", 1, busy=[0]), worker("w2", 1, busy=[0]), worker("w3", 1, busy=[0])]
    jobs_running = [
        running("normal-of-c", "w1", [0], "C", NORMAL),
        running("low-of-b", "w2", [0], "B", LOW),
        running("low-of-a", "w3", [0], "A", LOW),
    ]
    # B also holds a 4-GPU worker in the pool: furthest over its share.
    workers.append(worker("w4", 4, busy=[0, 1, 2, 3]))
    jobs_running.append(running("big-of-b", "w4", [0, 1, 2, 3], "B", HIGH))
    decision = run(snapshot(workers, [job("u", "D", URGENT)], jobs_running), now=10)
    assert [p.victim_id for p in decision.preemptions] == ["low-of-b"]


def test_backfill_passes_over_a_big_job_until_its_bound_then_it_reserves() -> None:
    workers = [worker("w1", 4, busy=[0, 1, 2]), worker("w2", 4, busy=[0, 1, 2])]
    busy = [running("r1", "w1", [0, 1, 2], "C"), running("r2", "w2", [0, 1, 2], "C")]
    jobs = [job("big", "A", gpus=4, at=0, since=0), job("small", "B", gpus=1, at=5, since=5)]
    fresh = run(snapshot(workers, jobs, busy), now=100, reserve_after_s=1800)
    assert placed(fresh) == ["small"]
    assert reason(fresh, "big") == "no worker in pool a100 has 4 free GPUs (largest: 1)"

    jobs.append(job("small2", "B", gpus=1, at=6, since=6))
    starving = run(snapshot(workers, jobs, busy), now=2000, reserve_after_s=1800)
    assert placed(starving) == ["small"]  # on w2: w1 is held for the big job
    assert starving.placements[0].allocations[0].worker_id == "w2"
    assert reason(starving, "big").startswith("holding w1 in pool a100")
    assert reason(starving, "small2").startswith("free capacity in pool a100 is held for job big")

    freed = [worker("w1", 4), workers[1]]
    done = run(snapshot(freed, jobs, busy[1:]), now=2100, reserve_after_s=1800)
    assert placed(done)[0] == "big"


def test_a_gang_is_placed_on_all_its_workers_or_not_at_all() -> None:
    one_free = [worker("w1", 4), worker("w2", 4, busy=[0]), worker("w3", 4, busy=[0, 1])]
    jobs = [job("gang", "A", gpus=4, workers=2, at=0), job("single", "B", gpus=2, at=1)]
    decision = run(snapshot(one_free, jobs))
    assert placed(decision) == ["single"]
    assert decision.placements[0].allocations[0].worker_id == "w3"  # best fit
    assert reason(decision, "gang") == "needs 2 workers, 1 free (each with 4 GPUs)"

    two_free = [worker("w1", 4), worker("w2", 4), worker("w3", 4, busy=[0, 1])]
    decision = run(snapshot(two_free, jobs[:1]))
    (gang,) = decision.placements
    assert [(a.worker_id, a.devices) for a in gang.allocations] == [
        ("w1", (0, 1, 2, 3)),
        ("w2", (0, 1, 2, 3)),
    ]


def test_a_tenant_at_its_quota_waits_while_others_use_the_free_gpus() -> None:
    tenants = [Tenant("A", gpu_quota={"a100": 2})]
    jobs = [job(f"a{i}", "A", at=i) for i in range(3)] + [job("b", "B", at=10)]
    decision = run(snapshot([worker("w1", 8)], jobs, tenants=tenants))
    assert sorted(placed(decision)) == ["a0", "a1", "b"]
    assert reason(decision, "a2") == "tenant at its GPU quota in pool a100 (2 of 2 GPUs)"


def test_a_draining_worker_gets_nothing() -> None:
    workers = [worker("w1", 4, draining=True), worker("w2", 4, busy=[0, 1, 2, 3])]
    decision = run(snapshot(workers, [job("j", gpus=2)]))
    assert placed(decision) == []
    assert reason(decision, "j") == "no worker in pool a100 has 2 free GPUs (largest: 0)"
    alone = run(snapshot(workers[:1], [job("j", gpus=2)]))
    assert reason(alone, "j") == "no live worker in pool a100 can take 2 GPUs"


def test_reasons_name_higher_priority_jobs_and_the_fair_share() -> None:
    full = [worker("w1", 4, busy=[0, 1, 2, 3]), worker("w2", 4, busy=[0, 1, 2, 3])]
    holders = [
        running("a-run", "w1", [0, 1, 2, 3], "A"),
        running("a-run2", "w2", [0, 1], "A"),
        running("b-run", "w2", [2, 3], "B"),
    ]
    highs = [job(f"h{i}", "C", HIGH, at=i) for i in range(3)]
    jobs = [*highs, job("a-next", "A", at=10), job("c-next", "C", at=11, gpus=2)]
    decision = run(snapshot(full, jobs, holders))
    assert reason(decision, "a-next") == "behind 3 jobs of higher priority"
    assert [s.queue_position for s in decision.waiting()] == [1, 2, 3, 4, 5]

    only_normal = run(snapshot(full, jobs[3:], holders))
    # A holds 6 of 8 GPUs; A, B and C share the pool: 8 / 3 = 2.7 each.
    assert reason(only_normal, "a-next") == "tenant over its fair share (6.0 of 2.7 GPUs)"
    assert reason(only_normal, "c-next") == "no worker in pool a100 has 2 free GPUs (largest: 0)"


def test_the_decision_does_not_depend_on_the_order_jobs_were_queued() -> None:
    rng = random.Random(7)
    workers = [worker(f"w{i}", 8, busy=range(rng.randrange(8)), pool=f"p{i % 2}") for i in range(6)]
    jobs = [
        job(
            f"j{i:03d}",
            f"t{rng.randrange(5)}",
            rng.choice([LOW, NORMAL, HIGH, URGENT]),
            gpus=rng.choice([1, 1, 2, 4, 8]),
            workers=rng.choice([1, 1, 1, 2]),
            pool=rng.choice(["p0", "p1", None]),
            at=rng.randrange(100),
        )
        for i in range(200)
    ]
    usage = {(f"t{i}", f"p{j}"): rng.random() * 1e4 for i in range(5) for j in range(2)}

    def outcome(order: list) -> tuple:
        decision = run(snapshot(workers, order, usage=usage), now=5000)
        return decision.placements, decision.preemptions, decision.waiting()

    expected = outcome(jobs)
    assert expected[0]
    for _ in range(3):
        shuffled = jobs[:]
        rng.shuffle(shuffled)
        assert outcome(shuffled) == expected


def test_requests_are_checked_against_live_workers_and_the_tenants_class_cap() -> None:
    workers = [worker("w1", 4), worker("w2", 8, draining=True), worker("c1", 2, pool="cpu", **CPU)]
    tenant = Tenant("A")
    assert check_request(workers, tenant, Resources(4, 1, "a100"), NORMAL) is None
    assert check_request(workers, tenant, Resources(8, 1, "a100"), NORMAL) == (
        "resources",
        "no live worker in pool a100 can take 1 x 8 GPUs",
    )
    assert check_request(workers, tenant, Resources(0, 1, "cpu"), NORMAL) is None
    assert not request_fits(workers, Resources(1, 2, "a100"))
    assert check_request(workers, tenant, Resources(1, 1, "a100"), URGENT) == (
        "priority",
        "tenant A may use up to high, not urgent",
    )
    admin_raised = Tenant("A", max_priority=URGENT)
    assert check_request(workers, admin_raised, Resources(1, 1, "a100"), URGENT) is None


def test_decayed_usage_halves_per_half_life_and_settles_at_allocation_times_mean_life() -> None:
    assert accrue(100.0, 0, 3600, 3600) == pytest.approx(50.0)
    steady = 0.0
    for _ in range(200):
        steady = accrue(steady, 4, 600, 3600)
    assert steady == pytest.approx(4 * 3600 / 0.6931471805599453, rel=1e-6)
    assert accrue(0.0, 4, 60, 3600) == pytest.approx(4 * 60, rel=0.01)


def test_a_cycle_with_no_room_stops_early_and_still_orders_every_job() -> None:
    full = [Worker("w1", "a100", 2, ())]
    jobs = [job(f"j{i:04d}", f"t{i % 3}", at=i) for i in range(3000)]
    decision = run(snapshot(full, jobs, usage={("t1", "a100"): 1.0, ("t2", "a100"): 2.0}))
    assert decision.visited == 0
    assert decision.waiting_count == 3000
    order = [s.job_id for s in decision.waiting()]
    t0 = [j.job_id for j in jobs if j.tenant == "t0"]
    assert order[:1000] == t0  # t0 has the lowest usage, then t1, then t2
    assert decision.status("j0001").queue_position == 1001  # type: ignore[union-attr]  # waits


def test_the_queue_index_keeps_counts_in_step() -> None:
    queue = WaitingQueue([job("a", gpus=4), job("b", gpus=2, pool="h100"), job("c", gpus=0)])
    assert queue.smallest_demand("a100", True) == 4
    assert queue.smallest_demand("a100", False) == 1
    queue.remove("a")
    assert queue.smallest_demand("a100", True) is None
    assert len(queue) == 2
    with pytest.raises(ValueError):
        queue.add(job("b"))
    assert Snapshot([], queue).waiting is queue


def test_devices_being_freed_by_a_stopping_job_serve_one_waiting_job_only() -> None:
    workers = [worker("w1", 1, busy=[0]), worker("w2", 1, busy=[0])]
    jobs_running = [
        running("low-a", "w1", [0], "B", LOW, stopping=True),
        running("low-b", "w2", [0], "B", LOW),
    ]
    urgent = [job("u1", "A", URGENT, at=1), job("u2", "A", URGENT, at=2)]
    decision = run(snapshot(workers, urgent, jobs_running), now=10)
    assert [(p.victim_id, p.for_job_id) for p in decision.preemptions] == [("low-b", "u2")]
    assert "checkpoint" in reason(decision, "u1")
