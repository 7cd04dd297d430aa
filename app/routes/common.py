"""Small helpers every controller uses."""

from __future__ import annotations

from typing import Any

from litestar import Request

from app.domain.access import Principal


def client_ip(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None


def principal_of(request: Request[Any, Any, Any]) -> Principal:
    """The signed-in person; the access guard has already refused anonymous requests."""
    user = request.scope.get("user")
    assert isinstance(user, Principal)
    return user


def safe_next(target: str | None) -> str:
    """Only same-site paths may follow a login (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"
