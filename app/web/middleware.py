"""Per-request language, and the security headers every response carries."""

from __future__ import annotations

from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.domain.access import Principal
from app.web import i18n
from app.web.auth import API_PREFIX

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class LocaleMiddleware(ASGIMiddleware):
    """Choose the request's language after authentication, so a signed-in user's choice wins."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, default_locale: str) -> None:
        self.default_locale = default_locale

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        headers = dict(scope["headers"])
        accept = headers.get(b"accept-language", b"").decode("latin-1") or None
        if scope["path"].startswith(API_PREFIX):
            # Programs get English unless they ask otherwise: a person's screen language is not theirs.
            locale = i18n.negotiate(accept, "en")
        else:
            user = scope.get("user")
            cookie = _cookie(headers.get(b"cookie", b"").decode("latin-1"), i18n.LANG_COOKIE)
            locale = i18n.choose_locale(
                user.locale if isinstance(user, Principal) else None, cookie, accept, self.default_locale
            )
        token = i18n.current_locale.set(locale)
        try:
            await next_app(scope, receive, send)
        finally:
            i18n.current_locale.reset(token)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class SecurityHeadersMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, hsts: bool) -> None:
        self.hsts = hsts

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("Permissions-Policy", "camera=(self), microphone=(), geolocation=()")
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
            await send(message)

        await next_app(scope, receive, send_with_headers)


__all__: list[Any] = ["LocaleMiddleware", "SecurityHeadersMiddleware"]
