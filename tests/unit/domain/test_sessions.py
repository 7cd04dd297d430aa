from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from app.domain.sessions import SessionPolicy, SessionState, needs_touch, session_state, token_expiry

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
IDLE = timedelta(minutes=60)
POLICY = SessionPolicy(idle=IDLE, absolute=timedelta(hours=12), token=timedelta(minutes=10))


def state(last_seen_ago=timedelta(0), ends_in=timedelta(hours=1), revoked=False):
    return session_state(
        last_seen_at=NOW - last_seen_ago,
        expires_at=NOW + ends_in,
        revoked_at=NOW if revoked else None,
        now=NOW,
        idle=IDLE,
    )


def test_a_recent_session_is_active():
    assert state() is SessionState.ACTIVE


def test_a_revoked_session_is_over_even_if_recent():
    assert state(revoked=True) is SessionState.REVOKED


def test_a_session_past_its_absolute_end_is_expired():
    assert state(ends_in=timedelta(0)) is SessionState.EXPIRED


def test_an_unused_session_times_out():
    assert state(last_seen_ago=IDLE) is SessionState.IDLE


def test_activity_is_recorded_at_most_once_a_minute():
    assert not needs_touch(NOW - timedelta(seconds=59), NOW, POLICY)
    assert needs_touch(NOW - timedelta(seconds=60), NOW, POLICY)


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)))
def test_a_token_never_outlives_its_session(remaining):
    expiry = token_expiry(NOW, NOW + remaining, POLICY)
    assert expiry <= NOW + remaining
    assert expiry <= NOW + POLICY.token
