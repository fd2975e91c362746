"""Scheduling bookkeeping: due order, lazy removal, spread first runs."""

from __future__ import annotations

import pytest

from services.scheduler.plan import Outstanding, Plan, spread


def test_due_groups_come_out_in_order_and_only_when_due():
    plan = Plan()
    plan.set("b", 20.0)
    plan.set("a", 10.0)
    plan.set("c", 30.0)
    assert plan.pop_due(5.0) == []
    assert plan.pop_due(20.0) == [("a", 10.0), ("b", 20.0)]
    assert plan.next_due() == 30.0
    assert len(plan) == 1


def test_rescheduling_and_removal_leave_no_stale_entry():
    plan = Plan()
    plan.set("a", 10.0)
    plan.set("a", 50.0)
    plan.set("b", 15.0)
    plan.remove("b")
    assert plan.next_due() == 50.0
    assert plan.pop_due(100.0) == [("a", 50.0)]
    assert plan.pop_due(100.0) == []
    assert "a" not in plan


def test_a_time_set_twice_or_set_again_after_a_removal_comes_out_once():
    """An entry is live while the plan holds its time for its group: two entries of one time
    are one run, and a group removed then planned again at the same time runs once."""
    plan = Plan()
    plan.set("a", 10.0)
    plan.set("a", 10.0)
    plan.set("b", 10.0)
    plan.remove("b")
    plan.set("b", 10.0)
    plan.set("c", 10.0)
    plan.remove("c")
    assert sorted(plan.pop_due(10.0)) == [("a", 10.0), ("b", 10.0)]
    plan.set("a", 10.0)
    assert plan.pop_due(10.0) == [("a", 10.0)]
    assert plan.pop_due(100.0) == [] and plan.next_due() is None and len(plan) == 0


def test_limit_bounds_one_pop():
    plan = Plan()
    for i in range(10):
        plan.set(f"g{i}", float(i))
    assert len(plan.pop_due(100.0, limit=4)) == 4
    assert len(plan) == 6


@pytest.mark.parametrize("frequency", [15.0, 60.0, 3600.0], ids=["15s", "1m", "1h"])
def test_first_runs_spread_over_the_frequency_and_stay_put(frequency: float):
    dues = [spread(f"group-{i}", frequency, 1000.0) for i in range(2000)]
    assert all(1000.0 <= d < 1000.0 + frequency for d in dues)
    # Roughly uniform: each quarter of the period gets a fair share.
    quarters = [
        sum(1 for d in dues if q * frequency / 4 <= d - 1000.0 < (q + 1) * frequency / 4)
        for q in range(4)
    ]
    assert min(quarters) > 400
    assert spread("group-1", frequency, 1000.0) == dues[1]


def test_outstanding_requests_expire_by_their_own_limit_once_each():
    """Only what is past its limit comes out; an answered or re-sent request never does."""
    out = Outstanding()
    out.add("slow", 0.0, 600.0)
    out.add("answered", 0.0, 120.0)
    out.add("resent", 0.0, 120.0)
    out.add("lost", 10.0, 120.0)
    del out.due["answered"]
    out.add("resent", 100.0, 120.0)
    assert out.expired(129.0) == []
    assert out.expired(131.0) == [("lost", 10.0)]
    assert out.expired(500.0) == [("resent", 100.0)]
    assert out.due == {"slow": 0.0}
    assert out.expired(601.0) == [("slow", 0.0)]
    assert out.expired(10_000.0) == [] and out.due == {}


def test_outstanding_holds_what_is_in_flight_not_what_was_answered():
    """Answered requests are passed over when their limit comes; until then the heap keeps
    no more than a bounded share of them, however many go out."""
    out = Outstanding()
    for n in range(100_000):
        out.add(f"g{n}", float(n), 120.0)
        if n >= 10:  # the answer to the request sent ten before this one
            del out.due[f"g{n - 10}"]
    assert len(out.due) == 10
    assert len(out._deadlines) <= 2 * 10 + 1024
    assert out.expired(10_000_000.0) == [(f"g{n}", float(n)) for n in range(99_990, 100_000)]
