"""Each role in a real browser: signing in and out, what the menu offers, language, CSRF, lockout."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, Response, expect

from tests.conftest import PERSONAS
from tests.e2e.conftest import TABLET, login

# Found by what they do, not by their words: the French catalog is still being written.
USERS_LINK = "nav a[href^='/admin/users']"
SIGN_OUT = "form[action='/logout'] button[type=submit]"
QUEUE_BUTTON = "button[hx-post='/ops/queue-check']"
# Rows the top bar takes: its brand, menu entries and buttons grouped by their vertical centre.
TOPBAR_ROWS = """() => {
  const centres = [...document.querySelectorAll('.topbar .brand, .mainnav a, .topbar-end .btn')]
    .map(e => { const r = e.getBoundingClientRect(); return r.top + r.height / 2; }).sort((a, b) => a - b);
  return centres.filter((c, i) => i === 0 || c - centres[i - 1] > 10).length;
}"""


def _path(page: Page, base_url: str) -> str:
    return page.url.removeprefix(base_url)


@pytest.mark.parametrize("role", ["operator", "supervisor", "admin"])
def test_persona_signs_in_sees_their_menu_and_signs_out(page: Page, live_server: str, role: str) -> None:
    persona = PERSONAS[role]
    login(page, live_server, persona)

    assert _path(page, live_server) == "/"
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", level=1)).to_contain_text(persona.full_name)
    expect(page.locator(".whoami")).to_contain_text(persona.full_name)
    users_link = page.locator(USERS_LINK)
    expect(users_link).to_have_count(1 if role == "admin" else 0)
    # On a 10" tablet in landscape the longest (French) menu keeps to two rows: the page has the rest.
    page.set_viewport_size(TABLET)
    assert page.evaluate(TOPBAR_ROWS) == 2

    if role == "admin":
        # The session travels in a Secure, host-only cookie, which Chromium keeps on http://127.0.0.1.
        cookies = {c["name"]: c for c in page.context.cookies()}
        assert "__Host-sd_session" in cookies, sorted(cookies)
        assert cookies["__Host-sd_session"]["secure"]
        assert cookies["__Host-sd_session"]["httpOnly"]
        expect(users_link).to_be_visible()
        label = users_link.inner_text().strip()
        users_link.click()
        page.wait_for_url(f"{live_server}/admin/users*")
        expect(page.get_by_role("heading", level=1)).to_have_text(label)
    else:
        response = page.goto(f"{live_server}/admin/users")
        assert response is not None
        assert response.status == 403
        expect(page.locator(".error-code")).to_have_text("403")
        expect(page.get_by_role("heading", level=1)).to_be_visible()

    page.locator(SIGN_OUT).click()
    page.wait_for_url(f"{live_server}/login")
    expect(page.locator("#f-username")).to_be_visible()

    page.goto(f"{live_server}/")
    assert _path(page, live_server).startswith("/login"), page.url
    expect(page.locator("#f-password")).to_be_visible()


def test_wrong_password_shows_an_alert_in_french(page: Page, live_server: str) -> None:
    login(page, live_server, PERSONAS["supervisor"], password="not-the-password")

    assert _path(page, live_server) == "/login"
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator("#f-username")).to_have_value(PERSONAS["supervisor"].username)
    expect(page.locator("#f-password")).to_have_value("")


def test_language_switch_goes_to_english_and_back(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/login")
    expect(page.locator("html")).to_have_attribute("lang", "fr")

    page.locator(".lang-switch button[value=en]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert _path(page, live_server) == "/login"

    page.locator(".lang-switch button[value=fr]").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    assert _path(page, live_server) == "/login"


def test_htmx_post_without_csrf_token_is_refused(page: Page, live_server: str) -> None:
    login(page, live_server, PERSONAS["admin"])
    assert _path(page, live_server) == "/"

    status = page.evaluate("""async () => {
        const response = await fetch('/ops/queue-check', {method: 'POST', headers: {'HX-Request': 'true'}});
        return response.status;
    }""")
    assert status == 403

    # The real button sends the token the page carries in its hx-headers.
    def is_queue_check(r: Response) -> bool:
        return r.url.endswith("/ops/queue-check") and r.request.method == "POST"

    with page.expect_response(is_queue_check) as info:
        page.locator(QUEUE_BUTTON).click()
    assert info.value.status == 200, info.value.status
    queue_check = page.locator("#queue-check")
    expect(queue_check.locator("[role=status]")).to_be_visible()  # no worker runs: it waits for one
    expect(queue_check).not_to_be_empty()


def test_locked_account_stays_locked_even_with_the_right_password(page: Page, live_server: str) -> None:
    persona = PERSONAS["lille_operator"]  # no other e2e test signs in as this persona: the lock persists
    for _attempt in range(5):  # LOGIN_LOCKOUT_THRESHOLD
        login(page, live_server, persona, password="wrong-password")
        expect(page.get_by_role("alert")).to_be_visible()

    login(page, live_server, persona)
    assert _path(page, live_server) == "/login"
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator(".whoami")).to_have_count(0)
    page.goto(f"{live_server}/")
    assert _path(page, live_server).startswith("/login")
