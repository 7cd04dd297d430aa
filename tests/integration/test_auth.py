"""Signing in and out through the real app and database."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text, update

from app.db.models import AccessEvent, User
from app.web.tokens import issue_token, read_token
from tests.conftest import PERSONAS
from tests.helpers import login, post_form

SESSION_COOKIE = "__Host-sd_session"


async def test_a_good_password_opens_a_session_with_a_host_only_secure_cookie(client):
    p = PERSONAS["operator"]
    response = await login(client, p.username, p.password)
    assert response.status_code == 303
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert attribute.lower() in cookie.lower()
    assert "domain=" not in cookie.lower()


async def test_a_wrong_password_is_refused_and_journaled(client, db):
    p = PERSONAS["operator"]
    response = await login(client, p.username, "not-the-password")
    assert response.status_code == 401
    assert (
        "Identifiant ou mot de passe incorrect" in response.text
        or "Wrong username or password" in response.text
    )
    assert SESSION_COOKIE not in client.cookies
    async with db.sessions() as s:
        events = (
            await s.scalars(select(AccessEvent.event).where(AccessEvent.actor_name == p.username))
        ).all()
        failures = await s.scalar(select(User.failed_logins).where(User.username == p.username))
    assert "login.failed" in events
    assert failures == 1


async def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(client):
    unknown = await login(client, "nobody", "whatever-password")
    wrong = await login(client, PERSONAS["operator"].username, "whatever-password")
    assert unknown.status_code == wrong.status_code == 401


async def test_a_locked_account_stays_locked_even_with_the_right_password(client, db):
    p = PERSONAS["operator"]
    for _ in range(5):
        assert (await login(client, p.username, "wrong-password!")).status_code == 401
    response = await login(client, p.username, p.password)
    assert response.status_code == 401
    assert SESSION_COOKIE not in client.cookies
    async with db.sessions() as s:
        locked_until = await s.scalar(select(User.locked_until).where(User.username == p.username))
    assert locked_until is not None


async def test_logout_ends_the_session_for_every_copy_of_the_cookie(client):
    p = PERSONAS["supervisor"]
    await login(client, p.username, p.password)
    stolen = client.cookies[SESSION_COOKIE]
    assert (await client.get("/", follow_redirects=False)).status_code == 200
    assert (await post_form(client, "/logout", {})).status_code == 303
    client.cookies.set(SESSION_COOKIE, stolen, domain="testserver.local")
    response = await client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


async def test_disabling_a_user_ends_their_open_session_at_once(client, db):
    p = PERSONAS["operator"]
    await login(client, p.username, p.password)
    async with db.transaction() as s:
        await s.execute(update(User).where(User.username == p.username).values(is_active=False))
    assert (await client.get("/", follow_redirects=False)).status_code == 303


async def test_an_idle_session_times_out(client, db):
    p = PERSONAS["operator"]
    await login(client, p.username, p.password)
    async with db.transaction() as s:
        await s.execute(text("UPDATE auth_sessions SET last_seen_at = last_seen_at - interval '2 hours'"))
    assert (await client.get("/", follow_redirects=False)).status_code == 303


async def test_an_htmx_request_of_an_anonymous_user_is_sent_to_login_with_hx_redirect(client):
    response = await client.get("/home/pipeline", headers={"HX-Request": "true"}, follow_redirects=False)
    assert response.headers.get("hx-redirect", "").startswith("/login")


async def test_a_post_without_csrf_token_is_refused(client):
    p = PERSONAS["admin"]
    await login(client, p.username, p.password)
    response = await client.post("/ops/queue-check", headers={"HX-Request": "true"})
    assert response.status_code == 403
    with_token = await client.post(
        "/ops/queue-check", headers={"HX-Request": "true", "x-csrftoken": client.cookies["__Host-csrftoken"]}
    )
    assert with_token.status_code == 200


async def test_the_login_redirect_only_follows_local_paths(client):
    p = PERSONAS["operator"]
    response = await post_form(
        client, "/login", {"username": p.username, "password": p.password, "next": "//evil.example/steal"}
    )
    assert response.headers["location"] == "/"


async def test_the_api_token_works_until_revoked(client, db):
    p = PERSONAS["supervisor"]
    token = await client.post("/api/v1/auth/token", json={"username": p.username, "password": p.password})
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    # The API token is not a browser session: it does not open pages.
    client.cookies.clear()
    assert (await client.get("/", headers=headers, follow_redirects=False)).status_code == 303
    async with db.transaction() as s:
        await s.execute(text("UPDATE auth_sessions SET revoked_at = now() WHERE kind = 'api'"))
    bad = await client.post("/api/v1/auth/token", json={"username": p.username, "password": "nope-nope-nope"})
    assert bad.status_code == 401
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["status"] == 401


async def test_the_session_token_is_renewed_while_in_use(client, test_settings):
    p = PERSONAS["operator"]
    await login(client, p.username, p.password)
    first = client.cookies[SESSION_COOKIE]
    # A token past half its life is replaced by the next response.
    claims = read_token(test_settings.security.secret_key, first, "browser")
    now = datetime.now(UTC)
    aging = issue_token(
        test_settings.security.secret_key,
        claims.session_id,
        "browser",
        now + timedelta(seconds=30),
        now - timedelta(minutes=9),
    )
    client.cookies.set(SESSION_COOKIE, aging, domain="testserver.local")
    response = await client.get("/", follow_redirects=False)
    assert response.status_code == 200
    renewed = read_token(test_settings.security.secret_key, client.cookies[SESSION_COOKIE], "browser")
    assert renewed.expires_at > claims.expires_at - timedelta(seconds=60)
    assert renewed.session_id == claims.session_id


async def test_activity_keeps_a_session_alive(client, db):
    p = PERSONAS["operator"]
    await login(client, p.username, p.password)
    async with db.transaction() as s:
        await s.execute(text("UPDATE auth_sessions SET last_seen_at = now() - interval '50 minutes'"))
    assert (await client.get("/", follow_redirects=False)).status_code == 200
    async with db.sessions() as s:
        idle = await s.scalar(text("SELECT now() - max(last_seen_at) FROM auth_sessions"))
    assert idle < timedelta(minutes=1)
