"""Helpers shared by integration tests: sign in as a persona, send forms with their CSRF token."""

from __future__ import annotations

from typing import Any

from httpx import Response

CSRF_COOKIE = "__Host-csrftoken"


async def csrf_token(client: Any) -> str:
    if CSRF_COOKIE not in client.cookies:
        await client.get("/login")
    return str(client.cookies[CSRF_COOKIE])


async def post_form(client: Any, url: str, data: dict[str, Any], **kwargs: Any) -> Response:
    token = await csrf_token(client)
    kwargs.setdefault("follow_redirects", False)
    return await client.post(url, data={**data, "_csrf_token": token}, **kwargs)


async def login(client: Any, username: str, password: str) -> Response:
    return await post_form(client, "/login", {"username": username, "password": password, "next": "/"})
