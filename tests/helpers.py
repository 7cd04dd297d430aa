"""Helpers shared by integration tests: sign in as a persona, send forms with their CSRF token, see
which thread a function runs in."""

from __future__ import annotations

import threading
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


def threads_running(monkeypatch: Any, module: Any, name: str) -> list[int]:
    """Wrap `module.name` for the test: the list it returns fills with the thread of each call."""
    threads: list[int] = []
    original = getattr(module, name)

    def noting(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, noting)
    return threads
