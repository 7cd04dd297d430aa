import hashlib
import re

from app.web.templating import STATIC_DIR
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


async def test_static_files_are_named_by_their_content_and_cached_for_good(client):
    """A release that changes a file changes its address: no browser or proxy keeps serving the old one."""
    page = (await client.get("/login")).text
    addresses = re.findall(r'(?:href|src)="(/static/[^"?]+)\?v=([0-9a-f]{12})"', page)
    assert {path for path, _ in addresses} >= {"/static/css/app.css", "/static/js/app.js"}
    assert not re.search(r'(?:href|src)="/static/[^"?]+"', page)  # none unversioned
    for path, version in addresses:
        content = (STATIC_DIR / path.removeprefix("/static/")).read_bytes()
        assert version == hashlib.sha256(content).hexdigest()[:12]
        served = await client.get(f"{path}?v={version}")
        assert served.status_code == 200 and served.content == content
        assert "immutable" in served.headers["cache-control"]
