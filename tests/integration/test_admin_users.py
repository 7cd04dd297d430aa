"""An admin manages accounts through the screens."""

from sqlalchemy import select

from app.db.models import AccessEvent, User
from tests.conftest import PERSONAS
from tests.helpers import login, post_form

SESSION_COOKIE = "__Host-sd_session"


async def sign_in_admin(client):
    admin = PERSONAS["admin"]
    assert (await login(client, admin.username, admin.password)).status_code == 303


async def test_an_admin_creates_a_user_who_can_then_sign_in(client, app, db):
    await sign_in_admin(client)
    response = await post_form(
        client,
        "/admin/users/",
        {
            "username": "Nadia.B",
            "full_name": "  Nadia   Benali ",
            "role": "operator",
            "sites": ["LIL"],
            "locale": "fr",
            "password": "a-good-password",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/users/nadia.b"
    page = await client.get("/admin/users/?q=nadia")
    assert "Nadia Benali" in page.text
    async with db.sessions() as s:
        user = await s.scalar(select(User).where(User.username == "nadia.b"))
        assert user.password_hash.startswith("$argon2id$")
        assert [site.code for site in user.sites] == ["LIL"]
        events = (
            await s.scalars(select(AccessEvent.detail).where(AccessEvent.event == "user.created"))
        ).all()
    assert events and "password" not in str(events)


async def test_bad_input_is_explained_in_french_and_nothing_is_created(client, db):
    await sign_in_admin(client)
    response = await post_form(
        client,
        "/admin/users/",
        {"username": "x", "full_name": "X", "role": "operator", "password": "a-good-password"},
        headers={"Accept-Language": "fr-FR"},
    )
    assert response.status_code == 422
    assert 'aria-invalid="true"' in response.text
    async with db.sessions() as s:
        assert await s.scalar(select(User).where(User.username == "x")) is None


async def test_a_short_password_is_refused_with_its_reason(client):
    await sign_in_admin(client)
    response = await post_form(
        client,
        "/admin/users/",
        {"username": "short.pw", "full_name": "Short", "role": "operator", "password": "tiny"},
    )
    assert response.status_code == 422
    assert "10" in response.text


async def test_disabling_an_account_ends_its_session(client):
    operator = PERSONAS["operator"]
    await login(client, operator.username, operator.password)
    operator_cookie = client.cookies[SESSION_COOKIE]
    assert (await client.get("/", follow_redirects=False)).status_code == 200
    client.cookies.delete(SESSION_COOKIE)
    await sign_in_admin(client)
    response = await post_form(client, f"/admin/users/{operator.username}/active", {"active": "0"})
    assert response.status_code == 303
    client.cookies.set(SESSION_COOKIE, operator_cookie, domain="testserver.local")
    assert (await client.get("/", follow_redirects=False)).status_code == 303


async def test_an_admin_cannot_disable_their_own_account(client):
    await sign_in_admin(client)
    response = await post_form(client, f"/admin/users/{PERSONAS['admin'].username}/active", {"active": "0"})
    assert response.status_code == 422


async def test_an_operator_only_sees_the_orders_of_their_sites(client, db):
    from sqlalchemy import insert

    from app.db.models import Destination, DispatchOrder, Site

    async with db.transaction() as s:
        sites = dict((await s.execute(select(Site.code, Site.id))).all())
        dest = (
            await s.execute(
                insert(Destination)
                .values(code="MAG-1", name="Magasin", kind="store")
                .returning(Destination.id)
            )
        ).scalar_one()
        from datetime import UTC, datetime

        await s.execute(
            insert(DispatchOrder).values(
                [
                    {
                        "number": "CMD-LIL-1",
                        "site_id": sites["LIL"],
                        "destination_id": dest,
                        "state": "released",
                        "due_at": datetime.now(UTC),
                        "source": "demo",
                    }
                ]
            )
        )
    operator = PERSONAS["operator"]  # works at LYS only
    await login(client, operator.username, operator.password)
    page = await client.get("/home/pipeline")
    assert "Lyon Saint-Priest" in page.text
    assert "Lille Lesquin" not in page.text
