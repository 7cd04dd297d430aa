from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from app.domain.lockout import LockoutPolicy, is_locked, register_failure

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
POLICY = LockoutPolicy(threshold=5, base_seconds=60, max_seconds=3600)


def test_failures_below_the_threshold_do_not_lock():
    outcome = register_failure(3, NOW, POLICY)
    assert outcome.failures == 4
    assert outcome.locked_until is None


def test_the_threshold_failure_locks_for_the_base_duration():
    assert register_failure(4, NOW, POLICY).locked_until == NOW + timedelta(seconds=60)


def test_each_further_failure_doubles_the_lock():
    assert register_failure(5, NOW, POLICY).locked_until == NOW + timedelta(seconds=120)
    assert register_failure(6, NOW, POLICY).locked_until == NOW + timedelta(seconds=240)


def test_a_lock_ends_at_its_time():
    until = NOW + timedelta(seconds=60)
    assert is_locked(until, NOW)
    assert not is_locked(until, until)
    assert not is_locked(None, NOW)


@given(
    failures=st.integers(min_value=0, max_value=10_000),
    threshold=st.integers(min_value=1, max_value=20),
    base=st.integers(min_value=1, max_value=600),
    cap=st.integers(min_value=1, max_value=86_400),
)
def test_locks_never_exceed_the_cap_and_never_shrink(failures, threshold, base, cap):
    policy = LockoutPolicy(threshold, base, max(cap, base))
    first = register_failure(failures, NOW, policy)
    second = register_failure(first.failures, NOW, policy)
    assert second.failures == failures + 2
    for outcome in (first, second):
        if outcome.locked_until is not None:
            assert timedelta(0) < outcome.locked_until - NOW <= timedelta(seconds=policy.max_seconds)
    if first.locked_until is not None:
        assert second.locked_until is not None and second.locked_until >= first.locked_until
