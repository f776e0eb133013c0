"""The pure incremental plan against a point-set oracle: windows cover exactly the new event
times plus every change inside what was materialized, before the end; disjoint, merged, sorted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from granero.incremental.plan import EPOCH, NEW_ROWS, Change, lookback, plan_windows, utc_days
from granero.registry import Interval, add_interval

HOUR = timedelta(hours=1)


def at(hour: int) -> datetime:
    return EPOCH + hour * HOUR


def spans(max_hour: int = 60):
    return st.tuples(st.integers(0, max_hour), st.integers(1, 12)).map(
        lambda p: Interval(start=at(p[0]), end=at(p[0] + p[1]))
    )


def done_intervals():
    def folded(items: list[Interval]) -> list[Interval]:
        merged: list[Interval] = []
        for item in items:
            merged = add_interval(merged, item)
        return merged

    return st.lists(spans(), max_size=4).map(folded)


changes = st.lists(
    st.builds(Change, st.one_of(st.none(), spans()), st.sampled_from(["delta", "landed", "lateness"])),
    max_size=5,
)


def points(windows: list[Interval], upto: int = 90) -> set[int]:
    """Half-hour probes (all bounds are whole hours, so probes decide coverage exactly)."""
    return {h for h in range(upto) if any(w.start <= at(h) + HOUR / 2 < w.end for w in windows)}


@settings(max_examples=400, deadline=None)
@given(done_intervals(), st.integers(1, 80), changes)
def test_windows_cover_new_times_and_changes_inside_what_was_materialized(done, end_hour, found):
    end = at(end_hour)
    plan = plan_windows(done, end, found)
    last = max((i.end for i in done), default=EPOCH)
    expected = points([Interval(start=last, end=end)]) if last < end else set()
    inside_done = points(done) & set(range(end_hour))
    for change in found:
        expected |= (points([change.span]) if change.span else set(range(90))) & inside_done
    windows = [r.window for r in plan]
    assert points(windows) == expected
    for before, after in zip(windows, windows[1:], strict=False):
        assert before.end < after.start  # disjoint and not touching: merged into one write
    for rerun in plan:
        assert (NEW_ROWS in rerun.reason) == (rerun.window.end > last and last < end)


def test_a_late_change_next_to_the_new_window_is_one_write_with_both_reasons():
    done = [Interval(start=EPOCH, end=at(48))]
    [rerun] = plan_windows(done, at(72), [Change(Interval(start=at(24), end=at(48)), "delta")])
    assert (rerun.window, rerun.reason) == (Interval(start=at(24), end=at(72)), f"delta; {NEW_ROWS}")


def test_nothing_new_and_nothing_changed_plans_nothing():
    done = [Interval(start=EPOCH, end=at(48))]
    assert plan_windows(done, at(48), []) == []
    assert plan_windows(done, at(48), [Change(Interval(start=at(50), end=at(60)), "after")]) == []


def test_lookback_is_the_declared_lateness_before_the_last_end_and_nothing_by_default():
    done = [Interval(start=EPOCH, end=at(48))]
    change = lookback(done, timedelta(days=1))
    assert change is not None and change.span == Interval(start=at(24), end=at(48))
    assert change.reason == "allowed_lateness 1d"
    assert lookback(done, timedelta(0)) is None and lookback([], timedelta(days=1)) is None


def test_utc_days_cover_whole_days_from_the_first_to_the_last_time():
    first, last = datetime(2026, 1, 2, 23, 59, tzinfo=UTC), datetime(2026, 1, 3, 0, 1, tzinfo=UTC)
    assert utc_days(first, last) == Interval(start=datetime(2026, 1, 2, tzinfo=UTC),
                                             end=datetime(2026, 1, 4, tzinfo=UTC))
