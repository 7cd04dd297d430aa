from tests.conftest import PERSONAS
from tests.helpers import login


async def test_login_page_renders_in_french_by_default(client):
    response = await client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert response.status_code == 200
    assert 'lang="fr"' in response.text


async def test_admin_logs_in_and_sees_home(client):
    p = PERSONAS["admin"]
    response = await login(client, p.username, p.password)
    assert response.status_code == 303, response.text
    home = await client.get("/")
    assert home.status_code == 200, home.text
    assert p.full_name in home.text
