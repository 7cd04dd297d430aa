"""Session tokens: a token verified once is not trusted beyond what it says (the verification is cached)."""

import time
import uuid
from datetime import UTC, datetime, timedelta

from app.web import tokens
from app.web.tokens import issue_token, read_token

SECRET = "unit-test-secret-key-long-enough-0123456789"


def test_a_verified_token_is_refused_once_it_expires(monkeypatch):
    now = datetime.now(UTC)
    sid = uuid.uuid4()
    token = issue_token(SECRET, sid, "api", now + timedelta(seconds=60), now)
    claims = read_token(SECRET, token, "api")
    assert claims is not None and claims.session_id == sid and claims.kind == "api"
    assert read_token(SECRET, token, "api") == claims  # from the cache
    expires = claims.expires_at.timestamp()
    monkeypatch.setattr(tokens.time, "time", lambda: expires - 0.5)
    assert read_token(SECRET, token, "api") == claims
    monkeypatch.setattr(tokens.time, "time", lambda: expires)
    assert read_token(SECRET, token, "api") is None


def test_a_cached_token_is_still_refused_for_another_kind_another_key_or_a_changed_byte():
    now = datetime.now(UTC)
    token = issue_token(SECRET, uuid.uuid4(), "browser", now + timedelta(minutes=5), now)
    assert read_token(SECRET, token, "browser") is not None
    assert read_token(SECRET, token, "api") is None
    assert read_token(SECRET + "x", token, "browser") is None
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    assert read_token(SECRET, tampered, "browser") is None
    assert read_token(SECRET, "not-a-token", "browser") is None


def test_an_expired_token_is_refused_even_on_its_first_use():
    now = datetime.now(UTC)
    token = issue_token(SECRET, uuid.uuid4(), "api", now - timedelta(seconds=1), now - timedelta(minutes=5))
    assert read_token(SECRET, token, "api") is None
    assert time.time() > now.timestamp() - 1


def test_the_cache_of_verified_tokens_is_bounded(monkeypatch):
    monkeypatch.setattr(tokens, "_VERIFIED_MAX", 3)
    monkeypatch.setattr(tokens, "_VERIFIED", {})
    now = datetime.now(UTC)
    issued = [issue_token(SECRET, uuid.uuid4(), "api", now + timedelta(minutes=5), now) for _ in range(5)]
    for token in issued:
        assert read_token(SECRET, token, "api") is not None
    assert len(tokens._VERIFIED) == 3
    assert [key[1] for key in tokens._VERIFIED] == issued[2:]
