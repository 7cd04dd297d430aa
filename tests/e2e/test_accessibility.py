"""axe-core on every page a person reaches: serious and critical violations fail the test."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PERSONAS
from tests.e2e.conftest import assert_accessible, login


def test_login_page_in_french(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/login")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    assert_accessible(page)


def test_login_page_in_english(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/login")
    page.locator(".lang-switch button[value=en]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert_accessible(page)


def test_login_page_with_an_error(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/login")
    page.locator("#f-username").fill("nobody")
    page.locator("#f-password").fill("nothing-at-all")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert_accessible(page)


@pytest.mark.parametrize("role", ["operator", "supervisor", "admin"])
def test_home_page(page: Page, live_server: str, role: str) -> None:
    login(page, live_server, PERSONAS[role])
    expect(page.get_by_role("heading", level=1)).to_contain_text(PERSONAS[role].full_name)
    assert_accessible(page)


@pytest.mark.parametrize("path", ["/admin/users", "/admin/users/new", "/admin/users/olivia"])
def test_admin_page(page: Page, live_server: str, path: str) -> None:
    login(page, live_server, PERSONAS["admin"])
    response = page.goto(f"{live_server}{path}")
    assert response is not None
    assert response.status == 200
    assert_accessible(page)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/admin/users", 403),
        ("/no/such/page", 404),
    ],
)
def test_error_page(page: Page, live_server: str, path: str, status: int) -> None:
    login(page, live_server, PERSONAS["operator"])
    response = page.goto(f"{live_server}{path}")
    assert response is not None
    assert response.status == status
    expect(page.locator(".error-code")).to_have_text(str(status))
    assert_accessible(page)


def test_the_check_itself_catches_a_violation(page: Page, live_server: str) -> None:
    """Guards against a silently green suite: an unlabelled field and faint text must be reported."""
    page.goto(f"{live_server}/login")
    page.evaluate("""() => {
        const form = document.querySelector('main form');
        form.insertAdjacentHTML('beforeend',
            '<input id="unlabelled" type="text"><p id="faint" style="color:#ccc;background:#fff">faint</p>');
    }""")
    with pytest.raises(pytest.fail.Exception) as failure:
        assert_accessible(page)
    assert "label (critical)" in str(failure.value)
    assert "#unlabelled" in str(failure.value)
    assert "color-contrast (serious)" in str(failure.value)
